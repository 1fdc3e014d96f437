"""An interrupted CF training resumes where it stopped: a run SIGKILLed after epoch 2 of 4 (in a subprocess),
rerun with the same settings, continues at epoch 3 and ends with the weights of an uninterrupted 4-epoch run."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import torch
import yaml

from allmrec_pipeline.pipelines.pretrain_cf.nodes import train_backbone
from tests.conftest import PROJECT_ROOT

PARAMS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_pretrain_cf.yml").read_text())["pretrain_cf"]
TRAINING = {**PARAMS["training"], "epochs": 4, "patience": 10, "eval_every": 1}
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import pandas as pd, torch
    from allmrec_pipeline import resume
    from allmrec_pipeline.pipelines.pretrain_cf.nodes import train_backbone
    data, params, checkpoint_dir, threads = sys.argv[1], eval(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(threads)
    tables = {name: pd.read_parquet(f"{data}/{name}.parquet") for name in ("train_sequences", "eval_candidates", "item_index")}
    save, saves = resume.TrainingCheckpoints.save, []
    def save_then_die(self, state):
        save(self, state)
        saves.append(state["epoch"])
        if state["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind, as a killed process gets
    resume.TrainingCheckpoints.save = save_then_die
    train_backbone(**tables, backbone_config=params["models"]["sasrec"], training=params["training"], backbone="sasrec", seed=3, checkpoints={"dir": checkpoint_dir})
    """
)


def _train(tables: dict, params: dict, seed: int, checkpoint_dir: str | None):
    return train_backbone(
        **tables,
        backbone_config=params["models"]["sasrec"],
        training=params["training"],
        backbone="sasrec",
        seed=seed,
        checkpoints={"dir": checkpoint_dir},
    )


def test_a_killed_cf_training_resumes_at_the_next_epoch_and_ends_as_an_uninterrupted_run(
    split_tables, tmp_path
):
    params = {**PARAMS, "training": TRAINING}
    tables = {name: split_tables[name] for name in ("train_sequences", "eval_candidates", "item_index")}
    for name, table in tables.items():
        table.to_parquet(tmp_path / f"{name}.parquet")
    checkpoint_dir = tmp_path / "checkpoints"
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(tmp_path),
            repr(params),
            str(checkpoint_dir),
            str(torch.get_num_threads()),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert len(list(checkpoint_dir.glob("cf_sasrec-*.safetensors"))) == 1

    resumed_model, resumed_summary, resumed = _train(tables, params, 3, str(checkpoint_dir))
    assert resumed["resumed_from_epoch"] == 2 and resumed["epochs_run"] == 4
    assert list(checkpoint_dir.iterdir()) == []  # a finished run removes its checkpoint

    whole_model, whole_summary, whole = _train(tables, params, 3, None)
    assert whole["resumed_from_epoch"] == 0
    assert resumed_model.tensors.keys() == whole_model.tensors.keys()
    for key, value in whole_model.tensors.items():
        assert torch.equal(resumed_model.tensors[key], value), key
    assert resumed["history"]["train_loss"] == whole["history"]["train_loss"]
    assert resumed_summary["best_valid_ndcg_at_10"] == whole_summary["best_valid_ndcg_at_10"]


def test_another_setting_does_not_resume_a_checkpoint(split_tables, tmp_path):
    params = {**PARAMS, "training": {**TRAINING, "epochs": 1}}
    tables = {name: split_tables[name] for name in ("train_sequences", "eval_candidates", "item_index")}
    # a file of the same backbone under another key is neither resumed nor removed
    _, _, first = _train(tables, params, 4, None)
    stray = tmp_path / "cf_sasrec-0000000000000000.safetensors"
    stray.write_bytes(b"not a checkpoint")
    _, _, report = _train(tables, params, 3, str(tmp_path))
    assert report["resumed_from_epoch"] == 0 and first["resumed_from_epoch"] == 0
    assert [p.name for p in tmp_path.iterdir()] == [stray.name]
