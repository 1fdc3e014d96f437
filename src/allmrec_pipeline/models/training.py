"""One training loop for every CF backbone: sampled-negative BCE (or CE) per position, Adam, early stopping
on validation NDCG@10 over the frozen candidate rows, best epoch kept."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from allmrec_pipeline import distributed, metrics
from allmrec_pipeline.progress import progress_bar
from allmrec_pipeline.resume import TrainingCheckpoints, restore_rng, rng_state

from .base import CFBackbone
from .data import CandidateRows, NextItemExamples, sample_negatives

LR_SCHEDULES = ("constant", "cosine")
logger = logging.getLogger(__name__)


@dataclass
class TrainingConfig:
    """The CF backbone's loop: the values come from ``pretrain_cf.training``; only the bench knobs at the end have
    defaults (off)."""

    epochs: int  # (int) maximum epochs
    batch_size: int  # (int) users per step
    lr: float  # (float) Adam learning rate
    weight_decay: float  # (float) Adam L2 penalty
    loss: str  # (str) bce: sampled-negative binary cross-entropy per position | ce: softmax over all items
    patience: int  # (int) stop after this many evaluations without a better validation NDCG@10
    eval_every: int  # (int) evaluate on the validation rows every this many epochs
    eval_batch_size: int  # (int) rows per scoring batch
    # bench knobs (bench/cf_vs_recbole.py's arguments), not in conf/base: off unless a bench sets them
    lr_decay: float | None = None  # (float|null) lr factor after a validation plateau; null: constant
    lr_decay_patience: int = 1  # (int) evaluations without a better NDCG@10 tolerated before each decay
    ema_decay: float | None = None  # (float|null) keep an EMA of the weights (decay per step); null: raw
    lr_schedule: str = "constant"  # (str) constant | cosine: anneal the lr to 0 over `epochs`, every step
    windows: bool = (
        False  # (bool) cut sequences longer than max_seq_len+1 into windows, so every position trains
    )
    window_stride: int | None = None  # (int|null) with windows: items between window ends; null: max_seq_len


@dataclass
class TrainingResult:
    history: dict[str, list[float]] = field(
        default_factory=dict
    )  # per-epoch curves (NaN where not evaluated)
    best_epoch: int = 0  # 1-based epoch whose weights were kept
    best_valid_ndcg_at_10: float = float("-inf")
    seconds_to_best: float = 0.0  # training + validation wall time up to the end of the best epoch
    seconds_total: float = 0.0
    stopped_early: bool = False
    resumed_from_epoch: int = 0  # the checkpointed epoch a rerun continued after; 0: started afresh


@torch.no_grad()
def score_candidates(model: CFBackbone, rows: CandidateRows, batch_size: int = 512) -> np.ndarray:
    """Scores ``(R, C)`` of every row's candidates, in eval mode."""
    model.eval()
    device = _device_of(model)
    out = [
        model.score(
            rows.histories[i : i + batch_size].to(device), rows.candidates[i : i + batch_size].to(device)
        ).cpu()
        for i in range(0, len(rows), batch_size)
    ]
    return torch.cat(out).float().numpy()


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def candidate_metrics(model: CFBackbone, rows: CandidateRows, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Per-row ranking metrics of the target among its frozen candidates."""
    scores = score_candidates(model, rows, batch_size)
    target = scores[np.arange(len(rows)), rows.target_pos.numpy()]
    return metrics.per_row_metrics(*metrics.target_rank_counts(scores, target))


@torch.no_grad()
def full_ranking_metrics(
    model: CFBackbone, histories: torch.Tensor, targets: torch.Tensor, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Per-row metrics of the target ranked against every item (RecBole's protocol); the items of the history
    are excluded, as RecBole masks already-seen items."""
    model.eval()
    parts = []
    device = _device_of(model)
    for i in range(0, len(targets), batch_size):
        history, target = histories[i : i + batch_size], targets[i : i + batch_size]
        scores = model.score_all(history.to(device)).float().cpu()  # (B, N+1)
        target_scores = scores.gather(1, target[:, None]).squeeze(1)
        scores.scatter_(1, history, float("-inf"))  # history (and its padding 0) out of the ranking
        scores.scatter_(1, target[:, None], target_scores[:, None])
        parts.append(metrics.target_rank_counts(scores.numpy(), target_scores.numpy()))
    better = np.concatenate([p[0] for p in parts])
    ties = np.concatenate([p[1] for p in parts])
    return metrics.per_row_metrics(better, ties, ("hr_at_10", "ndcg_at_10"))


def _gradients(
    model: CFBackbone,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None,
    loss_kind: str,
    device: str,
) -> float:
    """Set the gradients of one batch's loss (this rank's rows, the ranks' gradients summed: see ``train``);
    returns the batch's loss."""
    ranks = distributed.current()
    rows = ranks.part(torch.arange(len(inputs)))  # every row in one process
    weight = distributed.share(len(rows), len(inputs))
    part = slice(None) if ranks.world == 1 else rows
    optimizer.zero_grad(set_to_none=True)
    loss = torch.zeros(())
    if len(rows):
        loss = model.loss(
            inputs[part].to(device),
            positives[part].to(device),
            None if negatives is None else negatives[part].to(device),
            loss_kind,
        )
        (loss * weight if ranks.world > 1 else loss).backward()
    distributed.sum_gradients(model.parameters())
    return distributed.sum_values([loss.item() * weight])[0]


def train(
    model: CFBackbone,
    examples: NextItemExamples,
    valid: CandidateRows,
    config: TrainingConfig,
    seed: int,
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, float], CFBackbone], None] | None = None,
    checkpoints: TrainingCheckpoints | None = None,
    device: str = "cpu",
) -> TrainingResult:
    """Train ``model`` in place, on ``device``; on return it holds the weights of the best validation epoch (and
    stays on ``device``).

    Args:
        model: A freshly built backbone.
        examples: Per-user inputs and next items.
        valid: Frozen validation rows (early stopping on their NDCG@10).
        config: Loop settings.
        seed: Seeds dropout, the batch order and the negative sampler.
        progress: Show a progress bar.
        on_epoch: Called after each epoch with its number, its figures and the model that was validated (the
            weight average with ``ema_decay``), e.g. by a benchmark or to log the epoch as it ends.
        checkpoints: Where the loop's whole state is saved after every epoch (weights, optimizer, schedules,
            generators, early stopping, curves); a checkpoint found at the start is resumed from, so that the
            result equals an uninterrupted run's. Removed when training ends.
        device: A resolved torch device (``cpu``, ``cuda``, ``cuda:N``). The batches and negatives are drawn on
            the CPU, with the same generator whatever the device, and moved there.

    Under ``torchrun`` (``distributed``) each rank trains on its rows of every batch (``batch_size`` is the global
    batch), its mean loss weighted by its share of the rows, and the gradients are summed before each step (DDP's
    averaging of the ranks' means); the validation runs whole on every rank.
    """
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"training.lr_schedule: unknown {config.lr_schedule!r}; use one of {LR_SCHEDULES}")
    if config.lr_schedule == "cosine" and config.lr_decay is not None:
        raise ValueError("training.lr_schedule 'cosine' and training.lr_decay both set the lr: choose one")
    ranks = distributed.current()
    torch.manual_seed(seed + ranks.rank)  # each rank its own dropout; the sampler is shared
    sampler = torch.Generator().manual_seed(seed)
    model.to(device)
    distributed.broadcast_parameters(model.parameters())
    # fused: one kernel per update instead of a loop over tensors (about 10% of a SASRec step on 2 CPU cores)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, betas=(0.9, 0.98), weight_decay=config.weight_decay, fused=True
    )
    # a high lr to get close fast, a lower one to settle: torch's plateau schedule on validation NDCG@10
    scheduler = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max",
            factor=config.lr_decay,
            patience=config.lr_decay_patience,
            threshold=0.0,  # any gain resets the wait
            eps=0.0,  # every decay applies, however small the lr
        )
        if config.lr_decay is not None
        else None
    )
    # a fixed budget annealed to zero: the last epochs settle instead of hovering on a plateau (torch's cosine)
    annealing = (
        torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.epochs * -(-len(examples) // config.batch_size)
        )
        if config.lr_schedule == "cosine"
        else None
    )
    result = TrainingResult(
        history={
            "train_loss": [],
            "valid_ndcg_at_10": [],
            "valid_hit_at_1": [],
            "epoch_seconds": [],
            "lr": [],
        }
    )
    # an average of recent weights is steadier than the last step's on noisy validation (torch's EMA utility)
    averaged = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
        if config.ema_decay is not None
        else None
    )
    validated = model if averaged is None else averaged.module
    best_state, waited, elapsed = None, 0, 0.0
    schedules = {"scheduler": scheduler, "annealing": annealing, "averaged": averaged}

    def state(epoch: int) -> dict:
        return {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            **{key: None if value is None else value.state_dict() for key, value in schedules.items()},
            "sampler": sampler.get_state(),
            "rng": rng_state(),
            "loop": {"best_state": best_state, "waited": waited, "elapsed": elapsed},
            "result": dict(result.__dict__),
        }

    saved = checkpoints.load() if checkpoints is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        for key, value in schedules.items():
            if value is not None:
                value.load_state_dict(saved[key])
        sampler.set_state(saved["sampler"])
        restore_rng(saved["rng"])
        best_state, waited, elapsed = (saved["loop"][k] for k in ("best_state", "waited", "elapsed"))
        result = TrainingResult(**saved["result"])
        result.resumed_from_epoch = saved["epoch"]
        logger.info("%s: resuming after epoch %d from %s", model.name, saved["epoch"], checkpoints.path)
    first = result.resumed_from_epoch + 1
    bar = progress_bar(
        range(first, config.epochs + 1),
        desc=f"train {model.name}",
        unit="epoch",
        disable=not progress,
        initial=first - 1,
        total=config.epochs,
    )
    result.stopped_early = waited >= config.patience  # a checkpoint written as early stopping struck
    for epoch in [] if result.stopped_early else bar:
        start, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
        model.train()
        order = torch.randperm(len(examples), generator=sampler)
        total, steps = 0.0, 0
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            inputs, positives = examples.inputs[idx], examples.positives[idx]
            # CE scores every item: sampled negatives are only drawn for BCE (for the whole batch on every rank,
            # so that the shared sampler stays in step)
            negatives = (
                sample_negatives(inputs, positives, model.n_items, sampler) if config.loss == "bce" else None
            )
            loss = _gradients(model, optimizer, inputs, positives, negatives, config.loss, device)
            optimizer.step()
            if annealing is not None:
                annealing.step()
            if averaged is not None:
                averaged.update_parameters(model)
            total, steps = total + loss, steps + 1
        figures = {
            "lr": lr,  # at the epoch's start
            "train_loss": total / max(steps, 1),
            "valid_ndcg_at_10": float("nan"),
            "valid_hit_at_1": float("nan"),
        }
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            per_row = candidate_metrics(validated, valid, config.eval_batch_size)
            figures["valid_ndcg_at_10"] = float(per_row["ndcg_at_10"].mean())
            figures["valid_hit_at_1"] = float(per_row["hit_at_1"].mean())
            if scheduler is not None:
                scheduler.step(figures["valid_ndcg_at_10"])
        elapsed += time.perf_counter() - start
        figures["epoch_seconds"] = time.perf_counter() - start
        for key, value in figures.items():
            result.history[key].append(value)
        if not np.isnan(figures["valid_ndcg_at_10"]):
            if figures["valid_ndcg_at_10"] > result.best_valid_ndcg_at_10:
                result.best_valid_ndcg_at_10 = figures["valid_ndcg_at_10"]
                result.best_epoch, result.seconds_to_best, waited = epoch, elapsed, 0
                best_state = copy.deepcopy(validated.state_dict())
            else:
                waited += 1
        bar.set_postfix(
            refresh=False,
            loss=f"{figures['train_loss']:.4f}",
            ndcg10=f"{result.best_valid_ndcg_at_10:.4f}",
            best=result.best_epoch,
        )
        if on_epoch is not None:
            on_epoch(epoch, figures, validated)
        if checkpoints is not None:
            checkpoints.save(state(epoch))
        if waited >= config.patience:
            result.stopped_early = True
            break
    result.seconds_total = elapsed
    if best_state is not None:
        model.load_state_dict(best_state)
    if checkpoints is not None:
        checkpoints.clear()
    return result
