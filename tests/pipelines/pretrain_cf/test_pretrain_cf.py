"""pretrain_cf on the real Beauty slice: a one-epoch smoke run per backbone, metrics and config errors."""

from __future__ import annotations

import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset

from allmrec_pipeline.models.checkpoint import CheckpointMismatchError, load_backbone
from allmrec_pipeline.pipelines.pretrain_cf import create_pipeline
from tests.conftest import PROJECT_ROOT, run_in_memory

PARAMS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_pretrain_cf.yml").read_text())["pretrain_cf"]
SCENARIOS = ("overall", "cold_item", "warm_item", "cold_user")


def _run(split_tables, backbone: str, **training) -> DataCatalog:
    params = {**PARAMS, "training": {**PARAMS["training"], "epochs": 1, **training}}
    params["evaluation"] = {**PARAMS["evaluation"], "bootstrap_resamples": 100}
    catalog = DataCatalog(
        {
            name: MemoryDataset(split_tables[name])
            for name in ("train_sequences", "eval_candidates", "item_index")
        }
    )
    catalog["params:cf_backbone_config"] = params["models"][backbone]
    catalog["params:pretrain_cf.training"] = params["training"]
    catalog["params:pretrain_cf.evaluation"] = params["evaluation"]
    catalog["params:backbone"] = backbone
    catalog["params:seed"] = 3
    catalog["params:checkpoints"] = {"dir": None, "stage2_every_steps": 1}
    catalog["params:device"] = "cpu"  # through the device moves a GPU run takes
    return run_in_memory(create_pipeline(), catalog)


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec", "nextitnet", "ncf"])
def test_one_epoch_smoke_run(split_tables, backbone):
    catalog = _run(split_tables, backbone)
    model = load_backbone(catalog.load("cf_model"), expected_n_items=len(split_tables["item_index"]))
    assert model.name == backbone
    summary = catalog.load("cf_training_metrics")
    assert summary["best_epoch"] == 1 and summary["resumed_from_epoch"] == 0
    curves = catalog.load("cf_report")["history"]
    assert len(curves["train_loss"]) == 1 and len(curves["valid_ndcg_at_10"]) == 1
    test = catalog.load("cf_test_metrics")
    for scenario in SCENARIOS:
        for metric in ("hit_at_1", "hr_at_5", "hr_at_10", "ndcg_at_5", "ndcg_at_10", "mrr"):
            value = test[f"test.{scenario}.{metric}"]
            assert (
                test[f"test.{scenario}.{metric}_ci_low"] <= value <= test[f"test.{scenario}.{metric}_ci_high"]
            )
        assert test[f"test.{scenario}.n"] > 0
    assert (
        0 <= test["test.overall_full_ranking.ndcg_at_10"] <= test["test.overall_full_ranking.hr_at_10"] <= 1
    )
    report = catalog.load("cf_report")
    assert report["backbone"] == backbone and set(SCENARIOS) <= set(report["test"])


def test_same_metric_keys_for_every_backbone(split_tables):
    keys = {
        backbone: set(_run(split_tables, backbone).load("cf_test_metrics")) for backbone in ("sasrec", "ncf")
    }
    assert keys["sasrec"] == keys["ncf"]


def test_checkpoint_for_another_item_index_is_refused(split_tables):
    catalog = _run(split_tables, "gru4rec")
    with pytest.raises(CheckpointMismatchError, match="trained on another dataset or split"):
        load_backbone(catalog.load("cf_model"), expected_n_items=len(split_tables["item_index"]) + 1)
