"""stage1 on the real Beauty slice with the embedded MiniLM: a small end-to-end run, the text path, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from kedro.io import DataCatalog, MemoryDataset

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.models.checkpoint import CheckpointMismatchError, backbone_checkpoint
from allmrec_pipeline.models.registry import build_backbone
from allmrec_pipeline.pipelines.pretrain_cf import create_pipeline as pretrain_pipeline
from allmrec_pipeline.pipelines.stage1 import create_pipeline as stage1_pipeline
from allmrec_pipeline.pipelines.stage1.nodes import (
    load_alignment,
    load_item_text_vectors,
    load_text_encoder,
    render_item_texts,
)
from tests.configs import BACKBONE_CONFIGS
from tests.conftest import PROJECT_ROOT, run_in_memory

PRETRAIN = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_pretrain_cf.yml").read_text())["pretrain_cf"]
STAGE1 = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_stage1.yml").read_text())["stage1"]


def stage1_params(**training) -> dict:
    return {
        **STAGE1,
        "sbert": {**STAGE1["sbert"], "trainable_layers": 1},
        "training": {
            **STAGE1["training"],
            "max_examples": 64,
            "recall_sample": 50,
            "frozen_text_epochs": 1,
            **training,
        },
    }


@pytest.fixture(scope="session")
def stage1_catalog(split_tables) -> DataCatalog:
    """pretrain_cf (1 epoch, SASRec) then stage1 (64 examples), in memory, on the Beauty slice."""
    names = (
        "train_sequences",
        "eval_candidates",
        "item_index",
        "items",
        "cross_domain_item_index",
        "cross_domain_items",
    )
    catalog = DataCatalog({name: MemoryDataset(split_tables[name]) for name in names})
    catalog["item_popularity"] = MemoryDataset(split_tables["item_popularity"])
    catalog["params:cf_backbone_config"] = PRETRAIN["models"]["sasrec"]
    catalog["params:pretrain_cf.training"] = {**PRETRAIN["training"], "epochs": 1}
    catalog["params:pretrain_cf.evaluation"] = {**PRETRAIN["evaluation"], "bootstrap_resamples": 50}
    catalog["params:backbone"] = "sasrec"
    catalog["params:seed"] = 3
    catalog["params:stage1"] = stage1_params()
    catalog["params:cross_domain_enabled"] = True
    catalog["params:checkpoints"] = {"dir": None, "stage2_every_steps": 1}
    catalog["params:device"] = "cpu"  # through the device moves a GPU run takes
    return run_in_memory(pretrain_pipeline() + stage1_pipeline(), catalog)


def test_end_to_end_outputs(stage1_catalog, split_tables):
    n_items = len(split_tables["item_index"])
    joint = stage1_catalog.load("joint_item_embeddings")
    text = stage1_catalog.load("text_item_embeddings")
    assert joint["item_idx"].tolist() == list(range(1, n_items + 1)) == text["item_idx"].tolist()
    assert np.stack(joint["e"]).shape == (n_items, 128)
    assert stage1_catalog.load("stage1_metrics")["resumed_from_epoch"] == 0
    metrics = stage1_catalog.load("stage1_report")["history"]
    for key in (
        "loss_total",
        "loss_matching",
        "loss_item_recon",
        "loss_text_recon",
        "loss_rec",
        "cosine_e_q",
        "e_std_mean",
        "alignment_recall_at_10",
    ):
        assert len(metrics[key]) == 2, key  # the fine-tuning epoch, then one with SBERT frozen
    foreign = stage1_catalog.load("cross_domain_foreign_item_embeddings")
    assert len(foreign) == len(split_tables["cross_domain_item_index"])
    assert np.stack(foreign["cf_stand_in"]).shape[1] == 50  # the SASRec d: usable by the frozen backbone


def test_cold_items_take_the_text_path(stage1_catalog, split_tables):
    joint = stage1_catalog.load("joint_item_embeddings").set_index("item_idx")
    text = stage1_catalog.load("text_item_embeddings").set_index("item_idx")
    counts = split_tables["item_popularity"].set_index("item_idx")["count"]
    untrained = counts.index[counts == 0]
    assert len(untrained) > 0
    assert (joint.loc[untrained, "path"] == "text").all()
    assert (joint.loc[counts.index[counts > 0], "path"] == "cf").all()
    for item in untrained[:5]:
        np.testing.assert_array_equal(joint.loc[item, "e"], text.loc[item, "q"])


@pytest.mark.parametrize("max_count", [2, 5])
def test_the_text_path_switches_at_the_configured_training_count(stage1_catalog, split_tables, max_count):
    from allmrec_pipeline.pipelines.stage1.nodes import embed_items

    joint, text = embed_items(
        stage1_catalog.load("stage1_model"),
        stage1_catalog.load("stage1_item_text_vectors"),
        stage1_catalog.load("cf_model"),
        split_tables["item_index"],
        split_tables["item_popularity"],
        {**STAGE1, "text_path_max_count": max_count},
    )
    counts = (
        split_tables["item_popularity"]
        .set_index("item_idx")["count"]
        .reindex(joint["item_idx"], fill_value=0)
        .to_numpy()
    )
    assert (counts > max_count).any() and ((counts > 0) & (counts <= max_count)).any()
    np.testing.assert_array_equal(joint["path"].to_numpy() == "text", counts <= max_count)
    joint, text = joint.set_index("item_idx"), text.set_index("item_idx")
    for item in joint.index[joint["path"] == "text"][:5]:
        np.testing.assert_array_equal(joint.loc[item, "e"], text.loc[item, "q"])
    with pytest.raises(ConfigError, match="text_path_max_count"):
        embed_items(
            stage1_catalog.load("stage1_model"),
            stage1_catalog.load("stage1_item_text_vectors"),
            stage1_catalog.load("cf_model"),
            split_tables["item_index"],
            split_tables["item_popularity"],
            {**STAGE1, "text_path_max_count": -1},
        )


def test_item_text_vectors_are_the_fine_tuned_sberts_encoding(stage1_catalog, split_tables):
    """embed_items reads the table stage-1 training built instead of encoding every item again."""
    n_items = len(split_tables["item_index"])
    vectors = load_item_text_vectors(stage1_catalog.load("stage1_item_text_vectors"), n_items)
    texts = render_item_texts(split_tables["items"], split_tables["item_index"], stage1_params()["text"])
    encoder = load_text_encoder(stage1_catalog.load("stage1_sbert"), texts, stage1_params())
    expected = encoder.encode_all(torch.arange(1, n_items + 1))
    assert vectors.shape == (n_items + 1, expected.shape[1]) and not vectors[0].any()
    torch.testing.assert_close(vectors[1:], expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(CheckpointMismatchError, match=r"cover \d+ items but the item index has 3"):
        load_item_text_vectors(stage1_catalog.load("stage1_item_text_vectors"), 3)
    saved = stage1_catalog.load("stage1_item_text_vectors")
    truncated = saved._replace(tensors={"table": saved.tensors["table"][:-1]})
    with pytest.raises(
        CheckpointMismatchError, match=rf"has shape \({n_items}, \d+\), expected \({n_items + 1}, d\)"
    ):
        load_item_text_vectors(truncated, n_items)


def test_backbone_of_another_size_is_refused(stage1_catalog, split_tables):
    with pytest.raises(CheckpointMismatchError, match=r"backbone with d=50, but this backbone has d=64"):
        load_alignment(stage1_catalog.load("stage1_model"), cf_dim=64)


def test_unknown_template_field_names_the_key(split_tables):
    text = {**STAGE1["text"], "template": "Title: {title}, Brand: {brand}"}
    with pytest.raises(ConfigError, match=r"stage1.text.template' uses unknown field\(s\) \['brand'\]"):
        render_item_texts(split_tables["items"], split_tables["item_index"], text)


def test_missing_sbert_directory_fails_clearly(split_tables):
    from allmrec_pipeline.pipelines.stage1.nodes import align_collaborative_and_text

    model = build_backbone(
        "sasrec", len(split_tables["item_index"]), {**BACKBONE_CONFIGS["sasrec"], "hidden_size": 8}
    )
    params = {**stage1_params(), "sbert": {**STAGE1["sbert"], "model": "/nonexistent/nq-distilbert-base-v1"}}
    with pytest.raises(
        ConfigError,
        match=r"stage1.sbert.model': SBERT model '/nonexistent/nq-distilbert-base-v1' is not a local directory",
    ):
        align_collaborative_and_text(
            backbone_checkpoint(model),
            split_tables["train_sequences"],
            split_tables["item_index"],
            split_tables["items"],
            params,
            0,
            {"dir": None},
        )


def test_texts_follow_the_template(split_tables):
    texts = render_item_texts(split_tables["items"], split_tables["item_index"], STAGE1["text"])
    assert texts[0] == "" and len(texts) == len(split_tables["item_index"]) + 1
    first = (
        split_tables["item_index"].merge(split_tables["items"], on="item_id").sort_values("item_idx").iloc[0]
    )
    assert texts[1] == f"Title: {first['title']}"  # the Beauty slice has titles only


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_a_device_this_machine_lacks_stops_stage1_naming_the_parameter(split_tables):
    from allmrec_pipeline.pipelines.stage1.nodes import align_collaborative_and_text

    model = build_backbone(
        "sasrec", len(split_tables["item_index"]), {**BACKBONE_CONFIGS["sasrec"], "hidden_size": 8}
    )
    inputs = [split_tables[name] for name in ("train_sequences", "item_index", "items")]
    with pytest.raises(ConfigError, match=r"params 'device': device 'cuda:1' is asked for"):
        align_collaborative_and_text(
            backbone_checkpoint(model), *inputs, stage1_params(), 0, {"dir": None}, device="cuda:1"
        )


def test_both_stage1_nodes_that_run_sbert_take_the_run_device():
    nodes = {node.name: node for node in stage1_pipeline().nodes}
    for name in ("align_collaborative_and_text", "embed_foreign_items"):
        assert "params:device" in nodes[name].inputs, name
