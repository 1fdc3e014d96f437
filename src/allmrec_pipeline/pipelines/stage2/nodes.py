"""Nodes of ``stage2``: train the projectors that let a frozen LLM read the backbone and stage-1 embeddings."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import torch

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.gate_bounds import validation_rows
from allmrec_pipeline.llm.inputs import (
    build_recommender,
    cf_logits,
    item_table,
    item_titles,
    load_llm,
    row_samples,
    title_vector_table,
    training_cooccurrence,
    training_samples,
    user_vectors,
    with_cold_threshold,
    wording_for,
)
from allmrec_pipeline.llm.recommender import Sample
from allmrec_pipeline.llm.text_matcher import train_text_matcher
from allmrec_pipeline.llm.training import Stage2TrainingConfig, train_stage2
from allmrec_pipeline.models.checkpoint import Checkpoint, load_backbone, module_checkpoint
from allmrec_pipeline.models.data import popularity_counts
from allmrec_pipeline.resources import PeakMemory
from allmrec_pipeline.resume import TrainingCheckpoints, fingerprint
from allmrec_pipeline.schema import merge_variant
from allmrec_pipeline.tracking import epoch_logger

logger = logging.getLogger(__name__)


def hit_at_1(scores: np.ndarray, samples: list[Sample]) -> float:
    target = scores[np.arange(len(samples)), [s.target_pos for s in samples]]
    return float(
        metrics.per_row_metrics(*metrics.target_rank_counts(scores, target), ("hit_at_1",))["hit_at_1"].mean()
    )


def gate_rows(
    eval_candidates: pd.DataFrame, training: Stage2TrainingConfig, gated: bool = True
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], pd.Series]:
    """The ``overall`` validation rows, the validation twins the gate also reads (a ``gated`` model with
    ``gate_choice: bounds``: the first ``gate_valid_rows`` ``cold_item`` and ``warm_item`` rows; none otherwise)
    and the users left out of training: those of every row the model is chosen on."""
    valid_rows = validation_rows(eval_candidates, "overall")
    twins = {}
    if gated and training.gate_choice == "bounds" and training.gate_valid_rows:
        twins = {
            s: validation_rows(eval_candidates, s).head(training.gate_valid_rows)
            for s in ("cold_item", "warm_item")
        }
        empty = [s for s, rows in twins.items() if rows.empty]
        if empty or valid_rows.empty:
            logger.warning(
                "stage2.training.gate_choice bounds: no %s validation row, so the count gate is chosen by the "
                "nested rule on the overall validation rows",
                " or ".join(empty or ["overall"]),
            )
            twins = {}
    held_out_users = pd.concat([valid_rows["user_idx"], *(rows["user_idx"] for rows in twins.values())])
    return valid_rows, twins, held_out_users


def _frozen_samples(backbone, rows: pd.DataFrame, counts: np.ndarray) -> list[Sample]:
    """``rows`` as frozen samples: their users' CF vectors and CF logits computed once."""
    users = user_vectors(backbone, list(rows["history"]))
    return row_samples(rows, users, cf_logits(backbone, users, list(rows["candidates"])), counts)


def train_projectors(  # noqa: PLR0913 (one argument per catalog input)
    cf_model: Checkpoint,
    joint_item_embeddings: pd.DataFrame,
    train_sequences: pd.DataFrame,
    sequences: pd.DataFrame,
    eval_candidates: pd.DataFrame,
    item_index: pd.DataFrame,
    items: pd.DataFrame,
    item_title_vectors: pd.DataFrame,
    item_popularity: pd.DataFrame,
    stage2: dict[str, Any],
    llms: dict[str, Any],
    llm: str,
    dataset: str,
    seed: int,
    checkpoints: dict[str, Any],
    variant: str = "a_llmrec",
) -> tuple[Checkpoint, dict[str, Any], dict[str, Any]]:
    """Train ``F_U``, ``F_I`` (and the head) with the configured objective; keep the best validation epoch.

    ``variant`` names the entry of ``stage2.variants`` whose overrides apply: ``a_llmrec`` (the paper's model),
    ``mlp_llm`` (raw CF item embeddings, stage 1 skipped) or an ablation. Each epoch's mean loss and validation
    Hit@1 go to the MLflow run as the epoch ends (``stage2[.<variant>].train_loss`` / ``valid_hit_at_1`` at step
    = epoch). The loop checkpoints every ``checkpoints.stage2_every_steps`` optimizer steps and at each epoch's
    end under ``checkpoints.dir``, keyed by its inputs, parameters and seed: a rerun resumes.

    Returns:
        The projector checkpoint (never the LLM), per-step and per-epoch metrics, and the report (with the LLM
        id, revision, dtype and the rendered template, also set as run tags).
    """
    counts = popularity_counts(item_popularity, len(item_index))
    stage2, derived = with_cold_threshold(merge_variant(stage2, variant), counts)
    backbone = load_backbone(cf_model, expected_n_items=len(item_index)).requires_grad_(False)
    torch.manual_seed(seed)
    spec, model, tokenizer = load_llm(llms, llm)
    table = item_table(stage2["item_source"], joint_item_embeddings, backbone)
    titles = item_titles(items, item_index)
    vectors = title_vector_table(item_title_vectors, len(item_index))
    recommender = build_recommender(
        model,
        tokenizer,
        stage2,
        wording_for(stage2, dataset),
        table,
        titles,
        backbone.hidden_size,
        title_vectors=vectors,
        cooccurrence=training_cooccurrence(stage2["model"], train_sequences, len(item_index)),
    )
    training = Stage2TrainingConfig(**stage2["training"])
    valid_rows, twins, held_out_users = gate_rows(eval_candidates, training, recommender.gated)
    make_samples, n_users = training_samples(
        train_sequences, sequences, backbone, len(item_index), training, seed, held_out_users, counts
    )
    # the first rows serve both: the per-epoch choice (max_valid_rows) and the count gate's (gate_valid_rows)
    valid_rows = valid_rows.head(training.valid_rows_read)
    frozen = _frozen_samples(backbone, valid_rows, counts)
    valid, gate_samples = frozen[: training.max_valid_rows], frozen[: training.gate_valid_rows]
    if twins:
        gate_samples = {
            "overall": gate_samples,
            **{s: _frozen_samples(backbone, r, counts) for s, r in twins.items()},
        }
    matcher = {}  # gate_cosine_rank: the text matcher learns before the gate is chosen on what it scores
    if recommender.matcher is not None and training.matcher_steps:
        matcher = train_text_matcher(
            recommender.matcher,
            list(train_sequences["items"]),
            vectors,
            counts,
            recommender.config.n_history,
            training.matcher,
            seed,
        )
    valid_rows = valid_rows.head(training.max_valid_rows)
    logger.info(
        "Stage 2 %s (%s, %s): %d training users, %d validation rows",
        variant,
        recommender.config.objective,
        spec.model,
        n_users,
        len(valid),
    )
    key = fingerprint(
        cf_model.tensors, recommender.item_table, titles, stage2, llms[llm], seed, variant,
        train_sequences, sequences, valid_rows, counts,
        *([vectors] if recommender.config.gate_text_cosine else []),
        *(rows for rows in twins.values()),
    )  # fmt: skip
    prefix = "stage2" if variant == "a_llmrec" else f"stage2.{variant}"
    log_epoch, logged = epoch_logger(prefix), set()

    def on_epoch(epoch: int, figures: dict[str, float]) -> None:
        log_epoch(epoch, figures)
        logged.add(epoch)

    with PeakMemory(recommender.device) as peak:
        result = train_stage2(
            recommender,
            make_samples,
            valid,
            training,
            seed,
            hit_at_1,
            checkpoints=TrainingCheckpoints(checkpoints["dir"], f"stage2_{variant}", key),
            every_steps=int(checkpoints["stage2_every_steps"]),
            on_epoch=on_epoch,
            gate_samples=gate_samples,
        )
    for epoch in sorted(set(range(1, len(result.epoch_train_loss) + 1)) - logged):  # before a resume
        log_epoch(
            epoch,
            {
                "train_loss": result.epoch_train_loss[epoch - 1],
                "valid_hit_at_1": result.epoch_valid_hit_at_1[epoch - 1],
            },
        )
    example = recommender.render(valid[0]) if valid else ""
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    checkpoint = module_checkpoint(
        recommender,
        "stage2_projectors",
        config=recommender.config.to_dict(),
        item_source=stage2["item_source"],
        template=stage2["template"],
        wording=recommender.wording,
        llm=asdict(spec),
        dtype=dtype,
        cf_dim=backbone.hidden_size,
        item_dim=int(recommender.item_table.shape[1]),
        backbone=backbone.name,
        variant=variant,
    )
    curves = {
        "step_loss": result.step_loss,
        "step_samples_per_s": result.step_samples_per_s,
        "best_epoch": float(result.best_epoch),
        "resumed_from_epoch": float(result.resumed_from[0]),
        "seconds": result.seconds,
        # the cost figures (docs/evaluation.md, "What the models cost"): trainable weights, peak memory
        "trainable_parameters": float(sum(p.numel() for p in recommender.parameters() if p.requires_grad)),
        "peak_memory_gb": peak.gb,
        "samples_per_s": float(n_users * training.epochs / result.seconds)
        if result.seconds
        else float("nan"),
        **{f"head_warmup_{k}": v for k, v in result.head_warmup.items() if k != "gate"},
        **{f"matcher_{k}": v for k, v in matcher.items()},
        **derived,
        **{f"gate_{k}": v for k, v in result.head_warmup.get("gate", {}).items() if not isinstance(v, str)},
    }
    tag = "stage2" if variant == "a_llmrec" else f"stage2_{variant}"  # one run may hold several variants
    report = {
        "variant": variant,
        "objective": recommender.config.objective,
        "training_users": n_users,
        "valid_rows": len(valid),
        "valid_hit_at_1_by_epoch": [None if np.isnan(v) else v for v in result.epoch_valid_hit_at_1],
        "best_epoch": result.best_epoch,
        "seconds": result.seconds,
        "resumed_from": {"epoch": result.resumed_from[0], "batches_done": result.resumed_from[1]},
        "head_warmup": result.head_warmup or None,
        "rendered_template_example": example,
        "mlflow_tags": {
            "llm_model": spec.model,
            "llm_revision": str(spec.revision),
            "llm_dtype": dtype,
            f"{tag}_objective": recommender.config.objective,
            f"{tag}_item_source": stage2["item_source"],
        },
    }
    return checkpoint, curves, report
