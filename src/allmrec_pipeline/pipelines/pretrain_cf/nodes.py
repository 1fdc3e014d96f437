"""Nodes of ``pretrain_cf``: train the chosen CF backbone, then test it on the frozen candidate rows."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from allmrec_pipeline import metrics
from allmrec_pipeline.devices import run_device
from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.models import build_backbone
from allmrec_pipeline.models.checkpoint import Checkpoint, backbone_checkpoint, load_backbone
from allmrec_pipeline.models.data import CandidateRows, NextItemExamples
from allmrec_pipeline.models.training import (
    TrainingConfig,
    candidate_metrics,
    full_ranking_metrics,
    train,
)
from allmrec_pipeline.resume import TrainingCheckpoints, fingerprint
from allmrec_pipeline.tracking import epoch_logger, log_history

logger = logging.getLogger(__name__)


def candidate_rows(eval_candidates: pd.DataFrame, scenario: str, split: str, max_len: int) -> CandidateRows:
    """The frozen rows of one scenario and split as tensors."""
    rows = eval_candidates[(eval_candidates["scenario"] == scenario) & (eval_candidates["split"] == split)]
    return CandidateRows.build(
        list(rows["history"]), list(rows["candidates"]), list(rows["target_item_idx"]), max_len
    )


def train_backbone(
    train_sequences: pd.DataFrame,
    eval_candidates: pd.DataFrame,
    item_index: pd.DataFrame,
    backbone_config: dict[str, Any],
    training: dict[str, Any],
    backbone: str,
    seed: int,
    checkpoints: dict[str, Any],
    device: str = "cpu",
) -> tuple[Checkpoint, dict[str, Any], dict[str, Any]]:
    """Train ``backbone`` on the training sequences, early-stopped on the frozen validation rows.

    Each epoch's figures go to the MLflow run as the epoch ends (``cf.train_loss``, ``cf.valid_ndcg_at_10``, …
    at step = epoch). The loop checkpoints after every epoch under ``checkpoints.dir``, keyed by the backbone,
    its config, the loop's config, the seed and the training and validation tensors: an interrupted run rerun
    with the same settings resumes after its last finished epoch.

    Args:
        train_sequences: ``train_sequences(user_idx, items)`` from split_sequences.
        eval_candidates: Frozen evaluation rows; ``overall``/``valid`` drives early stopping.
        item_index: The item index (its length is N).
        backbone_config: The backbone's settings (``cf_backbone_config``, i.e. ``pretrain_cf.models.<backbone>``).
        training: ``pretrain_cf.training`` parameters.
        backbone: Backbone name (``sasrec``, ``gru4rec``, ``nextitnet``, ``ncf``).
        seed: The global seed.
        checkpoints: ``checkpoints`` parameters (``dir``; null: no checkpoints).
        device: The run's device (``params:device``: auto, cpu, cuda, cuda:N).

    Returns:
        The best epoch's checkpoint, its summary metrics and the training section of the report.
    """
    training = TrainingConfig(**training)
    device = run_device(device)
    torch.manual_seed(seed)
    try:
        model = build_backbone(backbone, len(item_index), dict(backbone_config))
    except ValueError as exc:
        raise ConfigError(f"params 'pretrain_cf.models.{backbone}': {exc}") from exc
    max_len = model.config.max_seq_len
    examples = NextItemExamples.build(
        list(train_sequences["items"]), max_len, training.windows, training.window_stride
    )
    valid = candidate_rows(eval_candidates, "overall", "valid", max_len)
    logger.info(
        "Training %s on %d users (%d validation rows) on %s", backbone, len(examples), len(valid), device
    )
    key = fingerprint(
        backbone, model.config.to_dict(), training.__dict__, seed, examples.inputs, examples.positives,
        valid.histories, valid.candidates, valid.target_pos,
    )  # fmt: skip
    log_epoch = epoch_logger("cf")
    result = train(
        model,
        examples,
        valid,
        training,
        seed,
        on_epoch=lambda epoch, figures, _: log_epoch(epoch, figures),
        checkpoints=TrainingCheckpoints(checkpoints["dir"], f"cf_{backbone}", key),
        device=device,
    )
    model.cpu()  # checkpoints are written from the CPU
    if result.resumed_from_epoch:  # the epochs before went to the interrupted run: this run gets them too
        log_history("cf", result.history, 1, result.resumed_from_epoch)
    logger.info(
        "%s: best validation NDCG@10 %.4f at epoch %d (%.1f s to best)",
        backbone,
        result.best_valid_ndcg_at_10,
        result.best_epoch,
        result.seconds_to_best,
    )
    summary = {
        "best_epoch": result.best_epoch,
        "best_valid_ndcg_at_10": result.best_valid_ndcg_at_10,
        "seconds_to_best": result.seconds_to_best,
        "seconds_total": result.seconds_total,
        "epochs_run": len(result.history["train_loss"]),
        "stopped_early": result.stopped_early,
        "resumed_from_epoch": result.resumed_from_epoch,
    }
    report = {
        "backbone": backbone,
        "config": model.config.to_dict(),
        "training": training.__dict__,
        **summary,
    }
    report["history"] = result.history
    return backbone_checkpoint(model), {k: float(v) for k, v in summary.items()}, report


def evaluate_backbone(
    cf_model: Checkpoint,
    eval_candidates: pd.DataFrame,
    item_index: pd.DataFrame,
    training_report: dict[str, Any],
    evaluation: dict[str, Any],
    seed: int,
    device: str = "cpu",
) -> tuple[dict[str, float], dict[str, Any]]:
    """Test the trained backbone on every scenario's frozen test rows, and with full ranking on ``overall``.

    Args:
        cf_model: The trained checkpoint.
        eval_candidates: Frozen evaluation rows.
        item_index: The item index (the checkpoint must match its length).
        training_report: The training section, merged into the report.
        evaluation: ``pretrain_cf.evaluation`` parameters.
        seed: Seeds the bootstrap.
        device: The run's device (``params:device``), where the candidates are scored.

    Returns:
        Flat MLflow metrics (``test.<scenario>.<metric>`` with ``_ci_low``, ``_ci_high`` and ``n``) and the
        full ``cf_report``.
    """
    model = load_backbone(cf_model, expected_n_items=len(item_index)).to(run_device(device))
    settings = evaluation
    resamples, confidence = int(settings["bootstrap_resamples"]), float(settings["confidence"])
    max_len = model.config.max_seq_len
    results: dict[str, dict[str, Any]] = {}
    for scenario in settings["scenarios"]:
        rows = candidate_rows(eval_candidates, scenario, "test", max_len)
        if len(rows) == 0:
            logger.warning("Scenario %s has no test rows: skipped", scenario)
            continue
        results[scenario] = metrics.summarize(candidate_metrics(model, rows), resamples, confidence, seed)
    if settings.get("full_ranking", True):
        rows = candidate_rows(eval_candidates, "overall", "test", max_len)
        targets = rows.candidates[torch.arange(len(rows)), rows.target_pos]
        full = full_ranking_metrics(model, rows.histories, targets)
        results["overall_full_ranking"] = metrics.summarize(full, resamples, confidence, seed)
    flat = _flatten(results)
    for scenario, summary in results.items():
        logger.info(
            "%s test %s: %s",
            model.name,
            scenario,
            {name: round(s["value"], 4) for name, s in summary.items()},
        )
    return flat, {**training_report, "test": results}


def _flatten(results: dict[str, dict[str, dict[str, Any]]]) -> dict[str, float]:
    flat: dict[str, float] = {}
    for scenario, summary in results.items():
        for name, stats in summary.items():
            flat[f"test.{scenario}.{name}"] = stats["value"]
            flat[f"test.{scenario}.{name}_ci_low"] = stats["ci_low"]
            flat[f"test.{scenario}.{name}_ci_high"] = stats["ci_high"]
        flat[f"test.{scenario}.n"] = float(next(iter(summary.values()))["n"])
    return {key: float(value) for key, value in flat.items() if not np.isnan(value)}
