"""One device setting for the run: resolved once, refused clearly where this machine lacks it, and the CF loop
runs through the same moves to it on the CPU as on a GPU."""

from __future__ import annotations

import pytest
import torch

from allmrec_pipeline.devices import resolve_device, run_device
from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.hooks import _device_problems
from allmrec_pipeline.models import build_backbone
from allmrec_pipeline.models.data import CandidateRows, NextItemExamples
from allmrec_pipeline.models.training import candidate_metrics, full_ranking_metrics, train
from allmrec_pipeline.schema import base_parameters, check_parameters
from tests.configs import BACKBONE_CONFIGS, training_config

SEQUENCES = [[(start + k) % 40 + 1 for k in range(8)] for start in range(60)]
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def test_auto_and_cpu_resolve_here():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@NO_GPU
@pytest.mark.parametrize("name", ["cuda", "cuda:3"])
def test_a_cuda_device_this_machine_lacks_is_refused_by_name(name):
    with pytest.raises(ValueError, match=rf"device '{name}' is asked for, but torch sees 0 CUDA device\(s\)"):
        resolve_device(name)
    with pytest.raises(ConfigError, match=r"params 'device': device"):
        run_device(name)


def test_a_name_that_is_no_device_is_refused_by_the_schema_and_the_resolver():
    params = base_parameters()
    params["device"] = "gpu"
    with pytest.raises(ConfigError, match=r"device: Value error, 'gpu' is not a device"):
        check_parameters(params)
    with pytest.raises(ValueError, match="is not a device"):
        resolve_device("gpu")


@NO_GPU
def test_the_preflight_names_the_run_device_and_the_llm_device():
    params = base_parameters()
    assert _device_problems(params) == []  # auto everywhere
    params["device"], params["llms"][params["llm"]]["device"] = "cuda", "cuda:1"
    problems = _device_problems(params)
    assert [p.split(":")[0] for p in problems] == ["device", f"llms.{params['llm']}.device"]


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec", "nextitnet", "ncf"])
def test_the_cf_loop_on_an_explicit_device_equals_the_default_one(backbone):
    """``device="cpu"`` takes every move a GPU run takes (model, batches, negatives, scoring) and changes nothing."""
    histories = [seq[:-1] for seq in SEQUENCES[:20]]
    targets = [seq[-1] for seq in SEQUENCES[:20]]
    valid = CandidateRows.build(histories, [[t, t % 40 + 1, (t + 5) % 40 + 1] for t in targets], targets, 10)
    config = training_config(epochs=2, batch_size=16, patience=5, loss="bce")
    runs = []
    for device in (None, "cpu"):
        torch.manual_seed(0)
        model = build_backbone(backbone, 40, {**BACKBONE_CONFIGS[backbone], "max_seq_len": 10})
        kwargs = {} if device is None else {"device": device}
        result = train(
            model, NextItemExamples.build(SEQUENCES, 10), valid, config, 0, progress=False, **kwargs
        )
        scored = candidate_metrics(model, valid)["ndcg_at_10"]
        full = full_ranking_metrics(model, valid.histories, torch.as_tensor(targets))["ndcg_at_10"]
        runs.append((model.state_dict(), result.history["train_loss"], scored, full))
    (first, loss, scored, full), (second, loss2, scored2, full2) = runs
    assert loss == loss2 and (scored == scored2).all() and (full == full2).all()
    assert all(torch.equal(first[k], second[k]) for k in first)
