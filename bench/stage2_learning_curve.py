"""Stage-2 learning curve: Hit@1 (95% bootstrap CI) on frozen validation rows after 100, 250, 500, 1,000 and
2,000 training samples, for each objective, next to the backbone, a popularity scorer and the untrained LLM-only
on the same rows.

    .venv/bin/python bench/stage2_learning_curve.py [--objectives lm,listwise,embedding_head]
        [--checkpoints 100,250,500,1000,2000] [--valid-rows 200] [--lr 1e-3] [--item-source joint]
        [--head-layer K|all] [--head-warmup-samples 100] [--train-users N] [--joint-lrs 1e-3:0,1e-3:1e-3]

Needs the outputs of ``pretrain_cf`` and ``stage1`` (``make run``). Training samples are the seeded training
users of ``stage2`` (their last training item is the target, 19 never-touched negatives), seen once each in a
seeded order, batch 4; every objective starts from the same seed and sees the same samples. The validation
rows are the first ``--valid-rows`` frozen ``overall`` validation rows of ``eval_candidates`` (20 candidates,
chance 0.05). ``lm`` and ``listwise`` rank by length-normalised title log-likelihood (rank mode),
``embedding_head`` by its head, which joint training moves at the config's ``stage2.training.head_lr`` (0: the
warmed-up head stays fixed) unless ``--joint-lrs`` says otherwise. Runs on the GPU when there is one
(``--device``). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from _common import ROOT, latest, read_checkpoint
from tqdm.auto import tqdm

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.inputs import (
    LLM_ONLY,
    build_recommender,
    item_table,
    item_titles,
    row_samples,
    training_samples,
    user_vectors,
    wording_for,
)
from allmrec_pipeline.llm.loading import LLMSpec, load_frozen_llm
from allmrec_pipeline.llm.recommender import Sample, SoftPromptRecommender
from allmrec_pipeline.llm.training import (
    Stage2TrainingConfig,
    candidate_scores,
    joint_optimizer,
    warm_up_head,
)
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.pipelines.evaluate_scenarios.scorers import Domain, score_cf, score_popularity
from allmrec_pipeline.schema import base_parameters


def hit_figures(scores: np.ndarray, target_pos: np.ndarray) -> dict[str, float]:
    target = scores[np.arange(len(scores)), target_pos]
    per_row = metrics.per_row_metrics(*metrics.target_rank_counts(scores, target), ("hit_at_1", "ndcg_at_10"))
    low, high = metrics.bootstrap_ci(per_row["hit_at_1"])
    return {
        "hit_at_1": float(per_row["hit_at_1"].mean()),
        "ci_low": low,
        "ci_high": high,
        "ndcg_at_10": float(per_row["ndcg_at_10"].mean()),
    }


def popularity_scores(train_sequences: pd.DataFrame, rows: pd.DataFrame, n_items: int) -> np.ndarray:
    """``(R, C)``: the pipeline's ``popularity`` scorer, with counts taken from the training sequences (a
    ``--root`` copy of the bench inputs has no ``item_popularity`` table)."""
    counts = np.bincount(np.concatenate(train_sequences["items"].to_numpy()), minlength=n_items + 1)
    return score_popularity(counts.astype(np.float64), rows).scores


def add_input_args(parser: argparse.ArgumentParser) -> None:
    """The arguments that choose the weights, rows and LLM (shared with ``stage2_head_probe.py``)."""
    parser.add_argument("--valid-rows", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--item-source", default="joint", choices=["joint", "cf"])
    parser.add_argument("--backbone", default="sasrec")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="project root holding data/ (default: this one)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument(
        "--head-tied",
        action=argparse.BooleanOptionalAction,
        help="embedding_head: keys share the query's map, or not (default: stage2.model.head_tied)",
    )
    parser.add_argument(
        "--head-layer",
        type=lambda value: value if value == "all" else int(value),
        help="embedding_head: read the hidden states after this many LLM layers, or 'all' (the figures before "
        "head_layer existed) (default: stage2.model.head_layer)",
    )


@dataclass
class BenchInputs:
    """What a stage-2 bench reads: the frozen LLM, the seeded training samples, the frozen validation rows."""

    samples: list[Sample]  # the seeded capped training users, in seeded training order
    valid: list[Sample]
    target_pos: np.ndarray
    out: dict  # the run's description, and the backbone on the validation rows
    recommender: Callable[[dict], SoftPromptRecommender]  # stage2's model with these overrides
    training: Stage2TrainingConfig  # stage2's training parameters, the draw's size as max_train_users


def load_inputs(args: argparse.Namespace, n_train: int) -> BenchInputs:
    torch.set_num_threads(args.threads)
    params = yaml.safe_load((ROOT / "conf/base/parameters_stage2.yml").read_text())["stage2"]
    head_tied = bool(params["model"].get("head_tied", False)) if args.head_tied is None else args.head_tied
    head_layer = params["model"].get("head_layer") if args.head_layer is None else args.head_layer
    head_layer = None if head_layer == "all" else head_layer

    def table(path: str) -> pd.DataFrame:
        return pd.read_parquet(latest(f"{path}/*/*.parquet", args.root))

    cf_path = f"data/06_models/beauty/{args.backbone}/cf_model.safetensors/*/cf_model.safetensors"
    backbone = load_backbone(read_checkpoint(latest(cf_path, args.root)))
    backbone.requires_grad_(False)
    item_index = table("data/03_primary/beauty/item_index.parquet")
    items = table("data/02_intermediate/beauty/items.parquet")
    rows = table("data/05_model_input/beauty/eval_candidates.parquet")
    rows = rows[(rows["scenario"] == "overall") & (rows["split"] == "valid")].head(args.valid_rows)
    joint = table(f"data/06_models/beauty/{args.backbone}/joint_item_embeddings.parquet")
    titles = item_titles(items, item_index)

    spec = LLMSpec(
        **{**base_parameters()["llms"][base_parameters()["llm"]], "dtype": args.dtype, "device": args.device}
    )
    model, tokenizer = load_frozen_llm(spec)
    training = Stage2TrainingConfig(
        **{**params["training"], "max_train_users": n_train, "batch_size": args.batch_size}
    )
    train_sequences = table("data/05_model_input/beauty/train_sequences.parquet")
    make_samples, n_users = training_samples(
        train_sequences,
        table("data/03_primary/beauty/sequences.parquet"),
        backbone,
        len(item_index),
        training,
        args.seed,
    )
    samples = make_samples(1)
    order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(args.seed)).tolist()
    valid = row_samples(rows, user_vectors(backbone, list(rows["history"])))
    target_pos = np.array([s.target_pos for s in valid])
    wording = wording_for(params, "beauty")
    source_table = item_table(args.item_source, joint, backbone)
    out = {
        "llm": spec.model,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "device": str(next(model.parameters()).device),
        "item_source": args.item_source,
        "head_tied": head_tied,
        "head_layer": head_layer,
        "backbone": args.backbone,
        "batch_size": args.batch_size,
        "valid_rows": len(valid),
        "training_users": n_users,
        "chance_hit_at_1": 1 / len(valid[0].candidates),
        "backbone_on_rows": hit_figures(score_cf(backbone, rows, Domain(titles, wording)).scores, target_pos),
        # the item-prior baseline of a sampled-negatives protocol: each candidate's training interactions
        "popularity_on_rows": hit_figures(
            popularity_scores(train_sequences, rows, len(item_index)), target_pos
        ),
    }

    def recommender(overrides: dict) -> SoftPromptRecommender:
        return build_recommender(
            model,
            tokenizer,
            params,
            wording,
            source_table,
            titles,
            backbone.hidden_size,
            # the count gate needs training counts this bench does not attach: the head alone or the plain skip
            {
                "head_tied": head_tied,
                "head_layer": head_layer,
                "gate_max_count": None,
                "gate_text_overlap": False,
                "gate_text_cosine": False,
                "gate_cooccurrence": False,
                **overrides,
            },
        )

    return BenchInputs([samples[i] for i in order], valid, target_pos, out, recommender, training)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objectives", default="lm,listwise,embedding_head")
    parser.add_argument(
        "--checkpoints",
        default="100,250,500,1000,2000",
        help="training samples seen; 0 scores the untrained model",
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    add_input_args(parser)
    parser.add_argument("--no-llm-only", action="store_true", help="skip scoring the untrained LLM-only")
    parser.add_argument(
        "--head-warmup-samples",
        type=int,
        default=0,
        help="embedding_head: before joint training, fit the head alone on frozen features of this many of "
        "the training samples (the first of the seeded order); 0: off",
    )
    parser.add_argument("--head-warmup-epochs", type=int, default=100)
    parser.add_argument(
        "--train-users",
        type=int,
        help="size of the seeded draw of training users (default: the largest checkpoint or warm-up); the "
        "draw depends on it, so the first 100 samples of a 2,000-user draw are not those of a 100-user one",
    )
    parser.add_argument(
        "--joint-lrs",
        default="",
        help="comma-separated PROJECTORS:HEAD learning-rate pairs for joint training, each a run of its own "
        "(a head at 0 stays as the warm-up left it; e.g. 1e-3:1e-3,1e-3:0); default: --lr and the config's "
        "stage2.training.head_lr",
    )
    args = parser.parse_args()
    checkpoints = sorted(int(c) for c in args.checkpoints.split(","))
    n_train = args.train_users or max(*checkpoints, args.head_warmup_samples)
    if n_train < max(*checkpoints, args.head_warmup_samples):
        parser.error("--train-users must cover the largest checkpoint and the warm-up")
    inputs = load_inputs(args, n_train)
    joint_lrs = [tuple(float(x) for x in pair.split(":")) for pair in args.joint_lrs.split(",") if pair]
    inputs.out["lr"] = args.lr
    samples, valid, target_pos, out, recommender = (
        inputs.samples,
        inputs.valid,
        inputs.target_pos,
        inputs.out,
        inputs.recommender,
    )

    if not args.no_llm_only:
        started = time.perf_counter()
        llm_only = recommender(LLM_ONLY)
        out["llm_only_on_rows"] = hit_figures(candidate_scores(llm_only, valid, args.batch_size), target_pos)
        out["llm_only_on_rows"]["eval_seconds"] = time.perf_counter() - started

    def record(objective: str, rec, curve: list, seen: int, losses: list, train_seconds: float) -> None:
        """Score the validation rows at a checkpoint and write what has been measured so far."""
        tick = time.perf_counter()
        figures = hit_figures(candidate_scores(rec, valid, args.batch_size), target_pos)
        curve.append(
            {
                "samples": seen,
                **figures,
                "mean_loss_last_50_steps": float(np.mean(losses[-50:])) if losses else None,
                "train_seconds": train_seconds,
                "eval_seconds": time.perf_counter() - tick,
            }
        )
        print(objective, json.dumps(curve[-1]), flush=True)
        out[objective] = {"curve": curve, "train_samples_per_s": seen / train_seconds if seen else None}
        if args.out:  # after every checkpoint: a long CPU run that is stopped keeps what it measured
            args.out.write_text(json.dumps(out) + "\n")

    runs = [(o, lrs) for o in args.objectives.split(",") for lrs in (joint_lrs or [None])]
    for run, (objective, lrs) in enumerate(runs):
        torch.manual_seed(args.seed)
        rec = recommender({"objective": objective})
        projector_lr, head_lr = lrs or (args.lr, inputs.training.head_lr)
        optimizer = joint_optimizer(rec, replace(inputs.training, lr=projector_lr, head_lr=head_lr))
        # the same seed builds the same model, so the untrained point is scored once per objective
        first_of_objective = run == 0 or runs[run - 1][0] != objective
        pending = [c for c in checkpoints if c or first_of_objective]
        label = f"{objective} projectors_lr={projector_lr:g} head_lr={head_lr:g}" if lrs else objective
        out.setdefault("joint_lrs", {})[label] = {"projectors": projector_lr, "head": head_lr}
        curve, seen, train_seconds, losses = [], 0, 0.0, []
        if objective == "embedding_head" and head_lr == 0 and not args.head_warmup_samples:
            print(f"{label}: the head is fixed and not warmed up, so it stays random", file=sys.stderr)
        if args.head_warmup_samples and objective == "embedding_head":
            warmup = warm_up_head(
                rec,
                samples[: args.head_warmup_samples],
                args.head_warmup_epochs,
                args.lr,
                args.seed,
            )
            print("head warm-up", json.dumps(warmup), flush=True)
            out["head_warmup"] = warmup
            train_seconds += warmup["seconds"]

        if pending and pending[0] == 0:  # the untrained model: what the initialisation alone scores
            pending.pop(0)
            record(label, rec, curve, 0, losses, train_seconds)
        starts = range(0, max(checkpoints), args.batch_size)
        for start in tqdm(starts, desc=f"{label} training", unit="batch"):  # stderr; JSON on stdout
            tick = time.perf_counter()
            rec.train()
            loss = rec.loss(samples[start : start + args.batch_size])
            rec.zero_grad(set_to_none=True)  # a fixed head is in no optimizer
            loss.backward()
            optimizer.step()
            train_seconds += time.perf_counter() - tick
            losses.append(loss.item())
            seen = min(start + args.batch_size, max(checkpoints))
            # the first batch that reaches a checkpoint (250 is not a multiple of 4)
            if pending and seen >= pending[0]:
                pending.pop(0)
                record(label, rec, curve, seen, losses, train_seconds)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
