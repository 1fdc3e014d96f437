"""Ranking metrics with one relevant item per row, and their confidence intervals.

Intervals: the Wilson score interval for hit rates (Hit@1, HR@k), the percentile bootstrap for graded metrics
(NDCG@k, MRR). The percentile bootstrap of a hit rate degenerates where hits are rare: 0 hits in 30 rows give
[0, 0], an interval that claims certainty (at a true rate of 0.05 that happens to 21% of 30-row samples, so
its coverage there is below 80%). Wilson's interval stays honest at small n and near 0 or 1.

Ties are broken uniformly at random *in expectation*: a target tied with ``t`` other candidates takes each
rank ``better+1 .. better+t+1`` with equal probability, and every metric is the exact expectation over that.
A model that gives every candidate the same score therefore lands exactly on chance, never below or above it.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np

METRICS: dict[str, tuple[str, int | None]] = {
    "hit_at_1": ("hit", 1),
    "hr_at_5": ("hit", 5),
    "hr_at_10": ("hit", 10),
    "ndcg_at_5": ("ndcg", 5),
    "ndcg_at_10": ("ndcg", 10),
    "mrr": ("mrr", None),
}


def target_rank_counts(scores: np.ndarray, target_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(better, ties)`` per row: candidates scoring strictly above the target, and others tied with it.

    Args:
        scores: ``(R, C)`` scores of every candidate, target included (``-inf`` for excluded ones).
        target_scores: ``(R,)`` the target's score.

    Raises:
        ValueError: a score is NaN (a NaN compares false with everything, so it would rank the target first).
    """
    scores = np.asarray(scores)
    nan_rows = np.flatnonzero(np.isnan(scores).any(axis=1))
    if len(nan_rows):
        raise ValueError(
            f"{len(nan_rows)} of {len(scores)} rows have NaN scores (e.g. row {nan_rows[0]}): the model's "
            "numbers overflowed or diverged (try dtype float32, or a lower learning rate)"
        )
    target = np.asarray(target_scores)[:, None]
    better = (scores > target).sum(axis=1)
    ties = (scores == target).sum(axis=1) - 1
    return better.astype(np.int64), np.maximum(ties, 0).astype(np.int64)


def per_row_metrics(
    better: np.ndarray, ties: np.ndarray, names: tuple[str, ...] = tuple(METRICS)
) -> dict[str, np.ndarray]:
    """Each metric's value per row, in expectation over random tie-breaking."""
    better = np.asarray(better, dtype=np.int64)
    ties = np.asarray(ties, dtype=np.int64)
    lowest, highest = better, better + ties + 1  # ranks better+1 .. better+ties+1 are equally likely
    top = int(highest.max(initial=1))
    ranks = np.arange(1, top + 1)
    gains = {"hit": np.ones(top), "ndcg": 1.0 / np.log2(ranks + 1.0), "mrr": 1.0 / ranks}
    out = {}
    for name in names:
        kind, k = METRICS[name]
        gain = gains[kind] if k is None else np.where(ranks <= k, gains[kind], 0.0)
        prefix = np.concatenate([[0.0], np.cumsum(gain)])  # prefix[r] = sum of gains of ranks 1..r
        out[name] = (prefix[highest] - prefix[lowest]) / (ties + 1)
    return out


def scores_per_row(
    scores: np.ndarray, target_pos: np.ndarray, names: tuple[str, ...] = tuple(METRICS)
) -> dict[str, np.ndarray]:
    """Each metric per row from candidate scores ``(R, C)`` and each row's target column ``(R,)``."""
    scores = np.asarray(scores)
    target_pos = np.asarray(target_pos)
    target_scores = scores[np.arange(len(scores)), target_pos]
    return per_row_metrics(*target_rank_counts(scores, target_scores), names)


def bootstrap_ci(
    values: np.ndarray, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (seeded, so reports are reproducible)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // len(values))  # bound memory for large row counts
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        means[start : start + size] = values[rng.integers(0, len(values), (size, len(values)))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_ci_rows(
    values: np.ndarray, seed: int = 0, n_resamples: int = 1000, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """``bootstrap_ci`` of each row of ``values`` ``(P, N)`` at once: ``(P,)`` lows and highs, every row resampled
    with one seeded draw of ``N`` columns (``bootstrap_ci``'s own draws where it takes them in one chunk:
    ``n_resamples · N`` at most 2,000,000)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    draws = np.random.default_rng(seed).integers(0, n, (n_resamples, n))
    weights = np.zeros((n, n_resamples))
    for column, draw in enumerate(draws):
        weights[:, column] = np.bincount(draw, minlength=n)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.empty(len(values)), np.empty(len(values))
    step = max(1, 4_000_000 // n_resamples)  # rows at a time: bounds the resampled means held at once
    for start in range(0, len(values), step):
        part = slice(start, start + step)
        low[part], high[part] = np.quantile(values[part] @ weights / n, [alpha, 1.0 - alpha], axis=1)
    return low, high


def wilson_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate from per-row values in [0, 1] (fractional where ties split a hit)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    z = float(NormalDist().inv_cdf(0.5 + confidence / 2.0))
    p = float(values.mean())
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # It always contains p; min/max only stop float rounding from putting p just outside it (at p = 0 or 1).
    return float(max(0.0, min(center - half, p))), float(min(1.0, max(center + half, p)))


# rates measured outside the rank metrics (generate mode): per-row values in [0, 1], Wilson intervals too
RATES = ("valid_ratio", "hit_at_1_lenient")


def interval(
    name: str, values: np.ndarray, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """The confidence interval of metric ``name``: Wilson for rates, the bootstrap otherwise."""
    if METRICS.get(name, ("", None))[0] == "hit" or name in RATES:
        return wilson_ci(values, confidence)
    return bootstrap_ci(values, n_resamples, confidence, seed)


def summarize(
    per_row: dict[str, np.ndarray], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """``{metric: {value, ci_low, ci_high, n}}``: the mean, its interval (see :func:`interval`) and the row
    count."""
    summary = {}
    for name, values in per_row.items():
        low, high = interval(name, values, n_resamples, confidence, seed)
        summary[name] = {
            "value": float(np.mean(values)) if len(values) else float("nan"),
            "ci_low": low,
            "ci_high": high,
            "n": int(len(values)),
        }
    return summary


def paired_bootstrap(
    model_values: np.ndarray,
    reference_values: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The mean paired difference ``model − reference`` over the same rows, with a percentile-bootstrap
    interval that resamples *rows* (each resample keeps both models' values of a row together).

    Because both models score the same rows, the per-row differences cancel what the rows share (an easy row
    is easy for both), so this interval is far tighter than two independent intervals side by side.

    Args:
        model_values: ``(R,)`` the model's per-row metric.
        reference_values: ``(R,)`` the reference's per-row metric on the same rows, in the same order.

    Returns:
        ``{difference, ci_low, ci_high, n, significant}``; ``significant``: the interval excludes 0.
    """
    model_values = np.asarray(model_values, dtype=np.float64)
    reference_values = np.asarray(reference_values, dtype=np.float64)
    if model_values.shape != reference_values.shape:
        raise ValueError(
            f"paired values need the same rows: {model_values.shape} against {reference_values.shape}"
        )
    differences = model_values - reference_values
    low, high = bootstrap_ci(differences, n_resamples, confidence, seed)
    return {
        "difference": float(differences.mean()) if len(differences) else float("nan"),
        "ci_low": low,
        "ci_high": high,
        "n": int(len(differences)),
        "significant": bool(len(differences) and (low > 0 or high < 0)),
    }
