"""Data-parallel training under torchrun: `torchrun --nproc-per-node 2 -m allmrec_pipeline --pipelines stage2`
on the CPU (gloo) trains the same projectors as one process with the same global batch, and only rank 0 writes
(one version of each output, one MLflow run)."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from allmrec_pipeline import distributed
from tests.test_project import _run, _runs, _tiny_llm_dir

TINY = (
    "pretrain_cf:\n  training:\n    epochs: 2\n  evaluation:\n    bootstrap_resamples: 100\n"
    "stage1:\n  sbert:\n    trainable_layers: 1\n  training:\n    max_examples: 64\n    recall_sample: 50\n"
    "    frozen_text_epochs: 1\n"
    "stage2:\n  model:\n    head_layer: 1\n  training:\n    max_train_users: 16\n    max_valid_rows: 8\n"
    "    batch_size: 4\n    epochs: 2\n    matcher_steps: 20\n"
)


def _kedro_run(project: Path, launcher: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*launcher, "-m", "allmrec_pipeline", "--pipelines", "stage2", "--params", "llm=tiny"],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def test_two_gloo_ranks_train_the_projectors_one_process_trains_and_only_rank_0_writes(project_copy):
    llm_dir = _tiny_llm_dir(project_copy)
    with (project_copy / "conf/local/parameters.yml").open("a") as file:
        file.write(
            TINY + f"llms:\n  tiny:\n    model: {llm_dir}\n    gguf_file: null\n    revision: null\n"
            "    dtype: float32\n    device: cpu\n"
        )
    for pipeline in ("ingest_amazon", "split_sequences", "pretrain_cf", "stage1"):
        _run(project_copy, pipeline, {"llm": "tiny"})
    outputs = project_copy / "data/06_models/beauty/sasrec/tiny/stage2_projectors.safetensors"

    _kedro_run(project_copy, [sys.executable])
    (single,) = outputs.iterdir()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    log = _kedro_run(project_copy, torchrun)
    assert "Data-parallel run: rank 1 of 2" in log.stdout + log.stderr

    versions = sorted(outputs.iterdir())
    assert len(versions) == 2  # one per run: rank 1 wrote nothing
    (parallel,) = set(versions) - {single}
    one = load_file(str(single / "stage2_projectors.safetensors"))
    two = load_file(str(parallel / "stage2_projectors.safetensors"))
    assert one.keys() == two.keys()
    assert any(key.startswith(("user_proj", "item_proj")) for key in one), sorted(one)
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-4, rtol=0, msg=key)

    mlflow.set_tracking_uri(f"sqlite:///{project_copy / 'mlflow.db'}")
    runs = _runs(project_copy)
    stage2_runs = runs[runs["tags.pipeline"] == "stage2"]
    assert len(stage2_runs) == 2 and (stage2_runs["status"] == "FINISHED").all()
    client = mlflow.MlflowClient()
    curves = [
        pd.Series([m.value for m in client.get_metric_history(run_id, "stage2.step_loss")])
        for run_id in stage2_runs["run_id"]
    ]
    assert len(curves[0]) == len(curves[1]) == 8  # 16 users / global batch 4, 2 epochs
    pd.testing.assert_series_equal(curves[0], curves[1], atol=1e-4, rtol=0)


BATCH = torch.arange(15.0).reshape(5, 3) / 10  # 5 rows: 3 on rank 0, 2 on rank 1


def _loss(layer: torch.nn.Module, rows: torch.Tensor) -> torch.Tensor:
    return layer(rows).pow(2).sum(1).mean()


def _gradient_rank(rank: int, port: int, results: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    distributed.start("cpu")
    try:
        layer = torch.nn.Linear(3, 2)  # unseeded: the ranks' initial weights differ until the broadcast
        unused = torch.nn.Parameter(torch.ones(2))
        distributed.broadcast_parameters(layer.parameters())
        initial = {k: v.clone() for k, v in layer.state_dict().items()}
        local = distributed.current().part(BATCH)
        (_loss(layer, local) * distributed.share(len(local), len(BATCH))).backward()
        distributed.sum_gradients([*layer.parameters(), unused])
        results[rank] = (initial, layer.weight.grad.clone(), layer.bias.grad.clone(), unused.grad)
    finally:
        distributed.stop()


def test_summed_gradients_of_uneven_shares_equal_the_whole_batch():
    from tests.conftest import free_port

    context = torch.multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        results = manager.dict()
        port = free_port()
        processes = [context.Process(target=_gradient_rank, args=(r, port, results)) for r in range(2)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(120)
        assert [p.exitcode for p in processes] == [0, 0]
        results = dict(results)

    initial = results[0][0]
    for key, value in results[1][0].items():
        assert torch.equal(value, initial[key])  # rank 0's start everywhere
    whole = torch.nn.Linear(3, 2)
    whole.load_state_dict(initial)
    _loss(whole, BATCH).backward()
    for rank in range(2):
        _, weight_grad, bias_grad, unused_grad = results[rank]
        torch.testing.assert_close(weight_grad, whole.weight.grad, atol=1e-6, rtol=0)
        torch.testing.assert_close(bias_grad, whole.bias.grad, atol=1e-6, rtol=0)
        assert unused_grad is None  # used by no rank: the optimizer skips it, as in one process


@pytest.mark.parametrize(("rank", "world"), [("1", "1"), ("x", "2")])
def test_bad_torchrun_variables_are_named(monkeypatch, rank, world):
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", world)
    with pytest.raises(ValueError, match="RANK"):
        distributed.launched()
