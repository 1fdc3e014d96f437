"""Paired differences against cf and the best floor, on synthetic predictions with known answers."""

import numpy as np
import pandas as pd
import pytest

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.pipelines.evaluate_scenarios.nodes import (
    _llm_rows,
    _rows,
    _scenario_caps,
    _smaller,
    collect_predictions,
    compare_models,
    summarize_scenarios,
    write_report,
)

PARAMS = {"bootstrap_resamples": 500, "confidence": 0.95}


def _predictions(model: str, scenario: str, rows: np.ndarray, hits: np.ndarray) -> pd.DataFrame:
    """Rank-mode predictions over 3 candidates whose target (column 0) ranks first exactly where ``hits``."""
    scores = [np.array([1.0, 0.0, 0.5]) if h else np.array([0.0, 1.0, 0.5]) for h in hits]
    return pd.DataFrame(
        {
            "model": model,
            "scenario": scenario,
            "row": rows,
            "user_idx": rows,
            "target_item_idx": 10,
            "candidates": [[10, 11, 12]] * len(rows),
            "scores": scores,
            "target_rank": [1.0 if h else 3.0 for h in hits],
            "generation": None,
            "valid": None,
            "hit": None,
            "hit_lenient": None,
        }
    )


@pytest.fixture
def predictions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    cf = rng.random(n) < 0.3
    overlap = rng.random(n) < 0.2
    fused = cf | (rng.random(n) < 0.15)  # wins every row cf wins, and more
    llm_rows = np.sort(rng.choice(n, 300, replace=False))
    llm = cf[llm_rows].copy()  # equals cf on its rows except 30 extra wins
    llm[np.flatnonzero(~llm)[:30]] = True
    return pd.concat(
        [
            _predictions("cf", "overall", np.arange(n), cf),
            _predictions("text_overlap", "overall", np.arange(n), overlap),
            _predictions("cf_text", "overall", np.arange(n), fused),
            _predictions("a_llmrec", "overall", llm_rows, llm),
        ],
        ignore_index=True,
    )


def test_every_model_is_compared_with_cf_and_the_best_floor_on_shared_rows(predictions):
    paired, flat = compare_models(predictions, PARAMS, seed=1)
    hit = paired[paired["metric"] == "hit_at_1"].set_index(["model", "reference"])
    assert set(paired["reference_model"]) == {"cf", "cf_text"}  # cf_text is the best floor here
    llm = hit.loc[("a_llmrec", "cf")]
    assert llm["n"] == 300  # only the rows both scored
    assert llm["difference"] == pytest.approx(30 / 300)
    assert llm["ci_low"] < 0.1 < llm["ci_high"] and llm["significant"] and llm["ci_low"] > 0
    assert hit.loc[("cf_text", "cf"), "n"] == 600 and hit.loc[("cf_text", "cf"), "significant"]
    assert ("cf_text", "best_floor") not in hit.index  # never against itself
    assert ("cf", "cf") not in hit.index and ("cf", "best_floor") in hit.index
    assert flat["a_llmrec.overall.hit_at_1_minus_cf"] == pytest.approx(0.1)
    assert {
        "a_llmrec.overall.hit_at_1_minus_cf_ci_low",
        "a_llmrec.overall.ndcg_at_10_minus_best_floor",
    } <= set(flat)


def test_other_llm_models_are_compared_with_a_llmrec_on_shared_rows(predictions):
    """A baseline scored beside a_llmrec (the ablations run, make baselines) gets its gap to a_llmrec; cf and the
    floors do not (their gap is a_llmrec's own, sign flipped), and a_llmrec is never compared with itself."""
    llm_rows = np.sort(predictions.loc[predictions["model"] == "a_llmrec", "row"].to_numpy())
    tallrec = np.zeros(len(llm_rows), dtype=bool)
    tallrec[:60] = True  # wins 60 of the 300 rows
    both = pd.concat([predictions, _predictions("tallrec", "overall", llm_rows, tallrec)], ignore_index=True)
    paired, flat = compare_models(both, PARAMS, seed=1)
    against = paired[(paired["reference"] == "a_llmrec") & (paired["metric"] == "hit_at_1")]
    assert against["model"].tolist() == ["tallrec"]
    llm_hits = predictions.loc[predictions["model"] == "a_llmrec"].sort_values("row")["target_rank"].eq(1.0)
    expected = tallrec.mean() - llm_hits.mean()
    assert against["n"].item() == 300 and against["difference"].item() == pytest.approx(expected)
    assert flat["tallrec.overall.hit_at_1_minus_a_llmrec"] == pytest.approx(expected)
    markdown, _ = write_report(summarize_scenarios(both, PARAMS, seed=1)[0], paired, both, "beauty")
    assert "### Model − a_llmrec" in markdown and "| tallrec |" in markdown
    assert (
        "### Model − a_llmrec"
        not in write_report(
            *[
                summarize_scenarios(predictions, PARAMS, seed=1)[0],
                compare_models(predictions, PARAMS, seed=1)[0],
            ],
            predictions,
            "beauty",
        )[0]
    )  # a_llmrec alone: no such table


def test_report_shows_floors_row_counts_and_both_paired_tables(predictions):
    metrics, _ = summarize_scenarios(predictions, PARAMS, seed=1)
    paired, _ = compare_models(predictions, PARAMS, seed=1)
    markdown, figures = write_report(metrics, paired, predictions, "beauty")
    assert "| text_overlap |" in markdown and "(n=600)" in markdown and "(n=300)" in markdown
    assert "### Model − cf" in markdown and "### Model − the scenario's best floor" in markdown
    assert "overall (− cf_text)" in markdown
    assert "| a_llmrec | **+0.100 [" in markdown  # significant: bold
    assert set(figures) == {"overall.png"}


def test_llm_rows_are_a_seeded_subset_of_the_scored_rows():
    candidates = pd.DataFrame(
        {
            "scenario": "overall",
            "split": ["test"] * 50 + ["valid"] * 5,
            "user_idx": np.arange(55),
            "target_item_idx": 1,
            "candidates": [[1, 2]] * 55,
            "history": [[3]] * 55,
        }
    )
    rows = _rows(candidates, "overall", None, seed=3)
    assert len(rows) == 50 and rows["row"].tolist() == list(range(50))
    subset = _llm_rows(rows, "overall", 20, seed=3)
    assert len(subset) == 20 and set(subset["row"]) <= set(rows["row"])
    assert subset["row"].tolist() == _llm_rows(rows, "overall", 20, seed=3)["row"].tolist()
    capped = _rows(candidates, "overall", 30, seed=3)
    assert len(capped) == 30 and capped["row"].is_monotonic_increasing


def test_a_scenarios_own_cap_is_checked_and_the_tighter_cap_wins():
    assert _scenario_caps({"max_llm_rows_by_scenario": {"cross_domain": 300, "overall": None}}) == {
        "cross_domain": 300
    }
    assert _scenario_caps({}) == {}
    assert _smaller(None, None) is None and _smaller(None, 300) == 300 and _smaller(8, 300) == 8
    with pytest.raises(ConfigError, match=r"names an unknown scenario 'crossdomain' \(known: overall"):
        _scenario_caps({"max_llm_rows_by_scenario": {"crossdomain": 300}})
    with pytest.raises(ConfigError, match=r"max_llm_rows_by_scenario\.cross_domain' must be a positive"):
        _scenario_caps({"max_llm_rows_by_scenario": {"cross_domain": True}})
    with pytest.raises(ConfigError, match=r"must map scenario names"):
        _scenario_caps({"max_llm_rows_by_scenario": [300]})


def test_generate_mode_reports_the_papers_lenient_hit_beside_ours():
    frame = _predictions("llm_only", "overall", np.arange(4), np.array([True, False, False, False]))
    frame["generation"] = ["a", "b", "c", "d"]
    frame["valid"] = [True, True, False, False]
    frame["hit"] = [True, False, False, False]
    frame["hit_lenient"] = [True, True, True, False]
    metrics, flat = summarize_scenarios(frame, PARAMS, seed=1)
    values = metrics.set_index("metric")["value"]
    assert values["hit_at_1"] == 0.25 and values["hit_at_1_lenient"] == 0.75 and values["valid_ratio"] == 0.5
    assert "llm_only.overall.hit_at_1_lenient_ci_low" in flat


@pytest.mark.parametrize(
    ("floors", "message"),
    [
        ({"n_history": 10}, "exactly the keys"),
        ({"n_history": 10, "text_encoder": "embedded", "cf_text_weights": [0.0]}, "exactly the keys"),
        ({"n_history": 0, "cf_text_weights": [0.0]}, "n_history"),
        ({"n_history": 10, "cf_text_weights": ["a"]}, "list of numbers"),
        ({"n_history": 10, "cf_text_weights": [-1.0]}, "weights >= 0"),
    ],
)
def test_bad_floor_settings_name_the_key(floors, message):
    from allmrec_pipeline.errors import ConfigError
    from allmrec_pipeline.pipelines.evaluate_scenarios.nodes import _floor_settings

    with pytest.raises(ConfigError, match=message):
        _floor_settings({"floors": floors})


def test_a_one_variant_ablation_run_collects_the_listed_models_it_scores():
    rows = np.arange(4)
    frames = {m: _predictions(m, "overall", rows, rows % 2 == 0) for m in ("a_llmrec", "cf", "no_gate")}
    listed = {"ablation_models": ["cf", "a_llmrec", "mlp_llm", "no_gate"], "scenarios": ["overall"]}
    wired = ("cf", "a_llmrec", "no_gate")
    table = collect_predictions(
        listed, *frames.values(), wired=wired, models_key="ablation_models", one_variant="no_gate"
    )
    assert list(dict.fromkeys(table["model"])) == [
        "cf",
        "a_llmrec",
        "no_gate",
    ]  # no LLM first, then as listed
    assert len(table) == 12
    with pytest.raises(ConfigError, match=r"lists \['mlp_llm'\], which this pipeline does not score"):
        collect_predictions(listed, *frames.values(), wired=wired, models_key="ablation_models")
