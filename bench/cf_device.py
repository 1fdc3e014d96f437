"""The CF backbone's training loop on a device: seconds per epoch and validation figures, on the CPU or a GPU.

    .venv/bin/python bench/cf_device.py --device cpu --epochs 2
    python bench/cf_device.py --root .gpu/root --device cuda --epochs 12   # a GPU machine without Kedro

Reads the newest ``train_sequences``, ``eval_candidates`` and ``item_index`` versions under ``--root`` (run
``make run``, or the pipelines up to ``split_sequences``, first), builds the backbone from conf/base's
``pretrain_cf`` settings and trains it with the pipeline's own loop (``models.training.train``) on ``--device``,
early-stopped on the frozen ``overall`` validation rows. Prints one JSON line: seconds per epoch (median and
each), the best validation NDCG@10 and Hit@1, and the device.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from _common import ROOT, emit, latest

from allmrec_pipeline.devices import resolve_device
from allmrec_pipeline.models import build_backbone
from allmrec_pipeline.models.data import CandidateRows, NextItemExamples
from allmrec_pipeline.models.training import TrainingConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="project root holding data/ (default: this one)"
    )
    parser.add_argument("--device", default="auto", help="auto: the GPU when there is one")
    parser.add_argument("--backbone", default="sasrec", choices=["sasrec", "gru4rec", "nextitnet", "ncf"])
    parser.add_argument("--epochs", type=int, help="default: pretrain_cf.training.epochs")
    parser.add_argument("--batch-size", type=int, help="default: pretrain_cf.training.batch_size")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the JSON line here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # conf/base's section read as plain YAML (Kedro's loader is not on a GPU machine); its one interpolation,
    # cf_backbone_config, is not read
    params = yaml.safe_load((ROOT / "conf/base/parameters_pretrain_cf.yml").read_text())["pretrain_cf"]
    training = {**params["training"], "patience": 10**6}  # every epoch runs: a timing, not a model choice
    for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size)):
        if value is not None:
            training[key] = value
    config = TrainingConfig(**training)

    def read(pattern: str) -> pd.DataFrame:
        return pd.read_parquet(latest(pattern, args.root))

    sequences = read("data/05_model_input/beauty/train_sequences.parquet/*/*.parquet")
    candidates = read("data/05_model_input/beauty/eval_candidates.parquet/*/*.parquet")
    item_index = read("data/03_primary/beauty/item_index.parquet/*/*.parquet")
    torch.manual_seed(args.seed)
    model = build_backbone(args.backbone, len(item_index), dict(params["models"][args.backbone]))
    max_len = model.config.max_seq_len
    rows = candidates[(candidates["scenario"] == "overall") & (candidates["split"] == "valid")]
    valid = CandidateRows.build(
        list(rows["history"]), list(rows["candidates"]), list(rows["target_item_idx"]), max_len
    )
    examples = NextItemExamples.build(list(sequences["items"]), max_len, config.windows, config.window_stride)
    device = resolve_device(args.device)
    result = train(model, examples, valid, config, args.seed, progress=False, device=device)
    seconds = result.history["epoch_seconds"]
    out = {
        "bench": "cf_device",
        "backbone": args.backbone,
        "device": device,
        "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "users": len(examples),
        "valid_rows": len(valid),
        "epochs": len(seconds),
        "batch_size": config.batch_size,
        "loss": config.loss,
        "seconds_per_epoch_median": float(np.median(seconds)),
        "seconds_per_epoch": seconds,
        "best_epoch": result.best_epoch,
        "best_valid_ndcg_at_10": result.best_valid_ndcg_at_10,
        "best_valid_hit_at_1": float(np.nanmax(result.history["valid_hit_at_1"])),
    }
    emit(out, args.out)


if __name__ == "__main__":
    main()
