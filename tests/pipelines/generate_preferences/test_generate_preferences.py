"""``generate_preferences`` end to end on the committed ml-100k slice (real genres), with a tiny LLM: the chain
through stage 2, TALLRec's adapters, then every model's answers, scored with intervals; and the skip without
categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.pipelines.generate_preferences.nodes import (
    held_out_items,
    preference_rows,
    summarize_preferences,
)
from tests.conftest import FIXTURES
from tests.test_project import _run, _runs, _tiny_llm_dir, tiny_settings

MODELS = ["most_common", "history_majority", "llm_only", "a_llmrec", "tallrec"]
PARAMS = {
    "max_users": 12,
    "label_noun": "genre",
    "template": "{user}This user has {verb} {history} in the previous. Of the {label_noun}s {labels}, the user likes",
    "batch_size": 4,
    "max_new_tokens": 3,
    "shown_users": 2,
}


def test_held_out_items_follow_the_validation_history():
    assert held_out_items([5, 6, 7, 8, 9], [6, 7], 8) == [8, 9]
    assert held_out_items([8, 6, 8, 9], [6], 8) == [8, 9]  # the target again after the history
    assert held_out_items([1, 2, 3, 4], [9], 3) == [
        3
    ]  # a history that is not in the sequence: the target alone


def test_items_without_categories_are_skipped_with_the_reason(caplog):
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"], "description": ["", ""]})
    item_index = pd.DataFrame({"item_id": ["a", "b"], "item_idx": [1, 2]})
    candidates = pd.DataFrame(
        {
            "scenario": ["overall"],
            "split": ["valid"],
            "user_idx": [1],
            "history": [[1]],
            "target_item_idx": [2],
        }
    )
    sequences = pd.DataFrame({"user_idx": [1], "items": [[1, 2]]})
    rows, setup = preference_rows(items, item_index, candidates, sequences, PARAMS, 0)
    assert rows.empty and "no category labels" in setup["skipped"]
    assert "skipped" in caplog.text
    evaluate = {"confidence": 0.95, "bootstrap_resamples": 100}
    _, table, paired, mlflow, markdown = summarize_preferences(
        rows, setup, items, item_index, PARAMS, evaluate, 0
    )
    assert table.empty and paired.empty and not mlflow
    assert "Skipped: the items have no category labels" in markdown


@pytest.fixture
def movielens_project(project_copy):
    recbole = FIXTURES / "recbole"
    llm_dir = _tiny_llm_dir(project_copy)
    (project_copy / "conf/local/catalog.yml").write_text(
        "raw_source:\n  type: allmrec_pipeline.datasets.RawSourceDataset\n  files:\n"
        f"    interactions: {recbole / 'ml-100k.inter'}\n    items: {recbole / 'ml-100k.item'}\n"
    )
    (project_copy / "conf/local/parameters.yml").write_text(
        "ingest:\n  source:\n    kind: recbole\n"
        "split:\n  cold_users:\n    n_users: 10\n"
        "evaluate:\n  max_users: 20\n"
        + tiny_settings(llm_dir, "    head_warmup_users: 32\n    gate_valid_rows: 10\n", evaluate="")
        + "generate_preferences:\n"
        + "".join(f"  {k}: {v!r}\n" if isinstance(v, str) else f"  {k}: {v}\n" for k, v in PARAMS.items())
    )
    return project_copy


def test_every_model_names_genres_on_the_movielens_slice(movielens_project):
    project = movielens_project
    switches = {"llm": "tiny", "cross_domain_enabled": False, "dataset": "movielens"}
    for pipeline in ("ingest_amazon", "split_sequences", "pretrain_cf", "stage1", "stage2"):
        _run(project, pipeline, switches)
    _run(project, "ablations", switches, node_names=["train_projectors_tallrec"])
    _run(project, "generate_preferences", switches)

    reporting = project / "data/08_reporting/beauty/sasrec/tiny"
    table = pd.read_parquet(next((reporting / "preference_metrics.parquet").glob("*/*")))
    assert sorted(table["model"].unique()) == sorted(MODELS)
    assert set(table["metric"]) == {"normalised", "exact"}
    n = int(table["n"].iloc[0])
    assert 0 < n <= PARAMS["max_users"] and (table["n"] == n).all()  # every model asked the same users
    assert ((table["ci_low"] <= table["value"]) & (table["value"] <= table["ci_high"])).all()
    assert (table["ci_high"] > table["ci_low"]).all()  # a real interval, even at 0 or 1
    # the floors name a listed genre by construction: normalised and exact agree there
    floors = table[table["model"].isin(MODELS[:2])].pivot(index="model", columns="metric", values="value")
    np.testing.assert_allclose(floors["normalised"], floors["exact"])

    generations = pd.read_parquet(
        next((project / "data/07_model_output/beauty/sasrec/tiny/preference_generations.parquet").glob("*/*"))
    )
    assert len(generations) == n * len(MODELS)
    assert generations.groupby("model")["user_idx"].apply(sorted).map(tuple).nunique() == 1
    llm_answers = generations[generations["model"].isin(MODELS[2:])]
    assert llm_answers["generation"].str.strip().str.len().gt(0).any()  # the tiny LLM does write
    # A-LLMRec reads the user's soft tokens: its answers are not the frozen LLM's titles-only ones everywhere
    by_model = llm_answers.pivot(index="user_idx", columns="model", values="generation")
    assert (by_model["a_llmrec"] != by_model["llm_only"]).any()

    paired = pd.read_parquet(next((reporting / "preference_differences.parquet").glob("*/*")))
    assert set(paired["reference"]) == set(MODELS) - {"a_llmrec"} and (paired["n"] == n).all()
    markdown = next((reporting / "preferences.md").glob("*/preferences.md")).read_text()
    assert (
        "# Favourite genre" in markdown and "| tallrec |" in markdown and "| history_majority |" in markdown
    )
    assert markdown.count("**User ") == PARAMS["shown_users"] and "| names one label |" in markdown

    run = _runs(project).sort_values("start_time").iloc[-1]
    assert run["status"] == "FINISHED"
    for model in MODELS:
        for suffix in ("", "_ci_low", "_ci_high", "_n"):
            assert not pd.isna(run[f"metrics.preferences.{model}.normalised{suffix}"]), (model, suffix)
        assert 0 <= run[f"metrics.preferences.{model}.named_a_label"] <= 1
    assert not pd.isna(run["metrics.preferences.a_llmrec_minus_llm_only.normalised_ci_low"])
    assert 1 / 18 <= run["metrics.preferences.chance"] < 1  # 18 genres, ties widen the truth


def test_a_run_before_the_models_exist_stops_naming_what_saves_each(project_copy):
    with pytest.raises(ConfigError) as error:
        _run(project_copy, "generate_preferences", {"cross_domain_enabled": False})
    message = str(error.value)
    assert "nothing was computed" in message
    assert "cf_model: no saved model" in message and "`kedro run --pipelines pretrain_cf` saves it" in message
    assert (
        "stage2_tallrec_model: no saved model" in message and "`kedro run --pipelines ablations`" in message
    )
    assert "items: no saved table" in message and "`kedro run --pipelines ingest_amazon` saves it" in message
    assert not (project_copy / "data/08_reporting").exists()
