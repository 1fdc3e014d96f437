"""Stage-2 head probe: how far the ``embedding_head`` gets when fitted alone on frozen LLM features (the head
warm-up), by number of training samples, weight decay, head size and stopping rule, on frozen validation rows.

    .venv/bin/python bench/stage2_head_probe.py [--sizes 50,100,200,400] [--weight-decays 0,0.1,1]
        [--head-dims 128] [--holdouts 0.2,0] [--epochs 100] [--head-seeds 0,1,2] [--valid-rows 300]
        [--seed 42] [--root DIR] [--cache FILE]

One no-grad forward pass per training sample and per validation row caches the head's inputs (the last prompt
position's and the candidates' hidden states) under the seed's untrained projectors, exactly as the warm-up
sees them; every head configuration is then fitted on the first ``size`` samples of the seeded order (the
warm-up's ``fit_head``: minibatches of 16, the epoch kept by a held-out fifth, or with ``--holdouts 0`` a
fixed number of ``--epochs`` on every sample) and scored on the cached rows in milliseconds. Joint training
is not probed (it moves the features). ``--head-layer`` (default: the config's) picks the depth the head reads.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch
from stage2_learning_curve import add_input_args, hit_figures, load_inputs

from allmrec_pipeline.llm.training import fit_head, frozen_head_features
from allmrec_pipeline.models.projectors import CandidateHead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="50,100,200,400", help="training samples the head is fitted on")
    parser.add_argument("--weight-decays", default="0,0.1,1", help="AdamW weight decays")
    parser.add_argument("--head-dims", default="128", help="query/key sizes")
    parser.add_argument("--lrs", default="1e-3", help="AdamW learning rates")
    parser.add_argument("--head-seeds", default="0,1,2", help="head init and held-out split seeds")
    parser.add_argument(
        "--holdouts",
        default="0.2",
        help="held-out shares that pick the epoch (the warm-up's 0.2); 0: fit every sample for exactly --epochs",
    )
    parser.add_argument("--epochs", default="100", help="head epochs (the most, with a held-out share)")
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep the features in this file, and reuse them when it holds those of the same inputs",
    )
    add_input_args(parser)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    inputs = load_inputs(args, max(sizes))
    torch.manual_seed(args.seed)  # the projectors' init, as in the learning curve and stage2's node
    rec = inputs.recommender({"objective": "embedding_head"})
    started = time.perf_counter()
    # what the features depend on: a cache made for other inputs is refused, never silently reused
    key = {
        k: str(getattr(args, k)) for k in ("root", "seed", "valid_rows", "dtype", "item_source", "backbone")
    }
    if inputs.out["head_layer"] is not None:  # (caches made before the option stay valid for the last layer)
        key["head_layer"] = str(inputs.out["head_layer"])
    key["training_samples"] = str(max(sizes))
    from_cache = bool(args.cache and args.cache.exists())
    if from_cache:
        cached = torch.load(args.cache)
        if cached["key"] != key:
            raise SystemExit(
                f"{args.cache} holds features of {cached['key']}, not {key}: delete it or pass another"
            )
        train_last, train_cand, valid_last, valid_cand = cached["features"]
    else:
        train_last, train_cand = frozen_head_features(rec, inputs.samples, args.batch_size, progress=True)
        valid_last, valid_cand = frozen_head_features(rec, inputs.valid, args.batch_size, progress=True)
        if args.cache:
            torch.save({"key": key, "features": (train_last, train_cand, valid_last, valid_cand)}, args.cache)
    out = {
        **inputs.out,
        "feature_seconds": time.perf_counter() - started,
        "features_from_cache": from_cache,
        "probes": [],
    }
    targets = torch.as_tensor([s.target_pos for s in inputs.samples])
    untrained = rec.head(valid_last, valid_cand).detach().numpy()
    out["untrained_head"] = hit_figures(untrained, inputs.target_pos)
    hidden = train_last.shape[1]
    grid = itertools.product(
        sizes,
        [float(v) for v in args.lrs.split(",")],
        [float(v) for v in args.weight_decays.split(",")],
        [int(v) for v in args.head_dims.split(",")],
        [float(v) for v in args.holdouts.split(",")],
        [int(v) for v in args.epochs.split(",")],
    )
    for size, lr, decay, dim, holdout, epochs in grid:
        runs = []
        for head_seed in (int(s) for s in args.head_seeds.split(",")):
            torch.manual_seed(head_seed)
            head = CandidateHead(hidden, dim, tied=out["head_tied"])
            fit = fit_head(
                head,
                train_last[:size],
                train_cand[:size],
                targets[:size],
                epochs,
                lr,
                head_seed,
                holdout=holdout,
                weight_decay=decay,
            )
            with torch.no_grad():
                scores = head(valid_last, valid_cand).numpy()
            runs.append(
                {"head_seed": head_seed, "best_epoch": fit["best_epoch"]}
                | hit_figures(scores, inputs.target_pos)
            )
        probe = {
            "samples": size,
            "lr": lr,
            "weight_decay": decay,
            "head_dim": dim,
            "holdout": holdout,
            "epochs": epochs,
            "mean_hit_at_1": sum(r["hit_at_1"] for r in runs) / len(runs),
            "runs": runs,
        }
        out["probes"].append(probe)
        print(json.dumps(probe), flush=True)
    if args.out:
        args.out.write_text(json.dumps(out) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
