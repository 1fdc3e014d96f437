"""Ranking metrics against hand-computed rankings (ties included) and the bootstrap interval's coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from allmrec_pipeline import metrics


def _one(scores, target_index=0):
    scores = np.asarray([scores], dtype=float)
    return {
        k: float(v[0])
        for k, v in metrics.per_row_metrics(
            *metrics.target_rank_counts(scores, scores[:, target_index])
        ).items()
    }


def test_target_ranked_first():
    m = _one([0.9, 0.1, 0.5])
    assert m == {
        "hit_at_1": 1.0,
        "hr_at_5": 1.0,
        "hr_at_10": 1.0,
        "ndcg_at_5": 1.0,
        "ndcg_at_10": 1.0,
        "mrr": 1.0,
    }


def test_target_ranked_third():
    m = _one([0.5, 0.9, 0.7, 0.1])
    assert m["hit_at_1"] == 0.0 and m["hr_at_5"] == 1.0
    assert m["ndcg_at_5"] == pytest.approx(1 / math.log2(4))
    assert m["mrr"] == pytest.approx(1 / 3)


def test_target_ranked_sixth_misses_at_five_but_hits_at_ten():
    m = _one([0.0, 1, 2, 3, 4, 5, -1])
    assert m["hr_at_5"] == 0.0 and m["ndcg_at_5"] == 0.0
    assert m["hr_at_10"] == 1.0 and m["ndcg_at_10"] == pytest.approx(1 / math.log2(7))
    assert m["mrr"] == pytest.approx(1 / 6)


def test_ties_are_broken_uniformly_in_expectation():
    # Target tied with one other candidate, one candidate above: rank 2 or 3 with equal chance.
    m = _one([0.5, 0.5, 0.9, 0.1])
    assert m["hit_at_1"] == 0.0
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert m["ndcg_at_5"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / 2)
    # All 20 tied: exactly chance.
    flat = _one([1.0] * 20)
    assert flat["hit_at_1"] == pytest.approx(1 / 20)
    assert flat["hr_at_10"] == pytest.approx(10 / 20)


def test_excluded_candidates_never_outrank_the_target():
    m = _one([0.1, -np.inf, -np.inf, 0.2])
    assert m["mrr"] == pytest.approx(0.5)


def test_bootstrap_interval_covers_the_true_rate_of_a_bernoulli_sample():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(200):
        sample = rng.random(400) < 0.3
        low, high = metrics.bootstrap_ci(sample, n_resamples=500, seed=trial)
        covered += low <= 0.3 <= high
    assert 0.90 <= covered / 200 <= 0.99  # a 95% interval, give or take the Monte-Carlo noise


def test_wilson_interval_keeps_its_coverage_where_the_percentile_bootstrap_collapses():
    # 30 rows at chance (1/20): 0 hits happen in 21% of samples, and the bootstrap then says [0, 0].
    rng = np.random.default_rng(1)
    trials, p = 400, 0.05
    wilson = bootstrap = 0
    for trial in range(trials):
        sample = (rng.random(30) < p).astype(float)
        low, high = metrics.wilson_ci(sample)
        wilson += low <= p <= high
        low, high = metrics.bootstrap_ci(sample, n_resamples=300, seed=trial)
        bootstrap += low <= p <= high
    assert wilson / trials >= 0.93
    assert bootstrap / trials <= 0.85
    assert metrics.wilson_ci(np.zeros(30)) == pytest.approx((0.0, 0.1135), abs=1e-4)


def test_hit_rates_get_wilson_intervals_and_graded_metrics_the_bootstrap():
    values = np.array([1.0, 0.0, 0.0, 0.5, 0.0, 1.0])
    summary = metrics.summarize({"hit_at_1": values, "ndcg_at_10": values}, n_resamples=200, seed=3)
    assert (summary["hit_at_1"]["ci_low"], summary["hit_at_1"]["ci_high"]) == metrics.wilson_ci(values)
    assert (summary["ndcg_at_10"]["ci_low"], summary["ndcg_at_10"]["ci_high"]) == metrics.bootstrap_ci(
        values, 200, seed=3
    )


def test_summary_carries_value_interval_and_count():
    summary = metrics.summarize({"hit_at_1": np.array([1.0, 0.0, 0.0, 1.0])}, n_resamples=200)
    assert summary["hit_at_1"]["value"] == 0.5 and summary["hit_at_1"]["n"] == 4
    assert 0.0 <= summary["hit_at_1"]["ci_low"] <= 0.5 <= summary["hit_at_1"]["ci_high"] <= 1.0


def test_nan_scores_are_refused_instead_of_ranking_the_target_first():
    scores = np.array([[0.1, 0.2, 0.3], [np.nan, np.nan, np.nan]])
    with pytest.raises(ValueError, match=r"1 of 2 rows have NaN scores \(e.g. row 1\)"):
        metrics.target_rank_counts(scores, scores[:, 0])


def test_paired_bootstrap_covers_a_known_difference_and_is_tighter_than_unpaired():
    rng = np.random.default_rng(3)
    n = 400
    ease = rng.random(n)  # what the rows share: an easy row is easy for both models
    reference = (rng.random(n) < ease).astype(float)
    model = reference.copy()
    flip = rng.choice(np.flatnonzero(reference == 0), 20, replace=False)
    model[flip] = 1.0  # the model wins exactly 20 rows more: a true difference of 0.05
    paired = metrics.paired_bootstrap(model, reference, 2000, 0.95, seed=1)
    assert paired["difference"] == pytest.approx(0.05)
    assert paired["ci_low"] < 0.05 < paired["ci_high"]
    assert paired["significant"] and paired["n"] == n
    low_m, high_m = metrics.wilson_ci(model)
    low_r, high_r = metrics.wilson_ci(reference)
    assert low_m < high_r  # the two independent intervals overlap: unpaired, no decision
    assert paired["ci_high"] - paired["ci_low"] < (high_m - low_m)


def test_paired_bootstrap_of_identical_models_is_zero_and_not_significant():
    values = np.random.default_rng(0).random(300)
    paired = metrics.paired_bootstrap(values, values, 500)
    assert paired == {"difference": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 300, "significant": False}
    with pytest.raises(ValueError, match="same rows"):
        metrics.paired_bootstrap(values, values[:10])


def test_bootstrap_ci_rows_equals_bootstrap_ci_row_by_row():
    values = np.random.default_rng(3).random((4, 50))
    low, high = metrics.bootstrap_ci_rows(values, seed=7)
    for row, (lo, hi) in enumerate(zip(low, high, strict=True)):
        assert (lo, hi) == pytest.approx(metrics.bootstrap_ci(values[row], seed=7))
