"""How well can item text predict the backbone's item embeddings at all? A ceiling for stage 1's Recall@10.

    .venv/bin/python bench/stage1_probe.py [--backbone sasrec] [--ridge 1,100,1000]

Stage 1's alignment Recall@10 asks whether ``q_i`` (from the item's text) finds ``e_i`` (from its CF embedding)
among the 10 nearest of all items. This probe skips the alignment networks and fits the most direct map there
is: a ridge regression from frozen MiniLM vectors to the standardised CF item embeddings, on a seeded 80% of
the items. It then asks the same retrieval question in the CF space (is the prediction from ``text_i`` among
the 10 nearest to ``E_i``?), over up to 1,000 items it was fitted on and 1,000 held-out items, the held-out
ones also by training-interaction count. Needs ``pretrain_cf`` outputs. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from _common import run_catalog

from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.models.text_encoder import CachedTextEncoder, load_sentence_transformer
from allmrec_pipeline.pipelines.stage1.nodes import render_item_texts


def recall_at_10(predicted: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor) -> float:
    distances = torch.cdist(predicted[rows], targets)  # (R, N)
    own = distances.gather(1, rows.unsqueeze(1))
    return float(((1 + (distances < own).sum(dim=1)) <= 10).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="sasrec")
    parser.add_argument("--params", default="", help="runtime params as kedro run takes them (key=value,...)")
    parser.add_argument("--ridge", default="1,100,1000", help="ridge penalties to try, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    catalog, _ = run_catalog(f"backbone={args.backbone}" + (f",{args.params}" if args.params else ""))
    params = catalog.load("params:stage1")
    backbone = load_backbone(catalog.load("cf_model"))
    cf = backbone.item_embeddings.detach()[1:]
    item_index, items = catalog.load("item_index"), catalog.load("items")
    sequences = catalog.load("train_sequences")
    texts = render_item_texts(items, item_index, params["text"])
    encoder = CachedTextEncoder(
        load_sentence_transformer("embedded"), texts, int(params["text"]["max_tokens"])
    )
    text = encoder.encode_all(torch.arange(1, len(texts)))
    counts = np.bincount(np.concatenate(sequences["items"].to_numpy()), minlength=len(cf) + 1)[1:]

    def standardise(x: torch.Tensor) -> torch.Tensor:
        return (x - x.mean(0)) / x.std(0).clamp(min=1e-6)

    targets, inputs = standardise(cf), standardise(text)
    order = torch.randperm(len(cf), generator=torch.Generator().manual_seed(args.seed))
    fitted, held_out = order[: len(cf) * 4 // 5], order[len(cf) * 4 // 5 :]
    out = {
        "backbone": args.backbone,
        "items": len(cf),
        "random_recall_at_10": 10 / len(cf),
        "probes": [],
    }
    for penalty in (float(p) for p in args.ridge.split(",")):
        x, y = inputs[fitted], targets[fitted]
        weights = torch.linalg.solve(x.T @ x + penalty * torch.eye(x.shape[1]), x.T @ y)
        predicted = inputs @ weights
        by_count = {}
        for low, high in ((0, 5), (5, 10), (10, 30), (30, None)):
            counts_held = counts[held_out.numpy()]
            keep = (counts_held >= low) & (counts_held < (high or np.inf))
            rows = held_out[torch.from_numpy(keep)][:1000]
            by_count[f"{low}-{high or 'max'}"] = {
                "items": int(keep.sum()),
                "recall_at_10": recall_at_10(predicted, targets, rows),
            }
        out["probes"].append(
            {
                "ridge": penalty,
                "recall_at_10_fitted_items": recall_at_10(predicted, targets, fitted[:1000]),
                "recall_at_10_held_out_items": recall_at_10(predicted, targets, held_out[:1000]),
                "held_out_by_training_interactions": by_count,
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
