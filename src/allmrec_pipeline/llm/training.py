"""Stage-2 training: projectors (and head) learn while the LLM stays frozen; the best epoch is kept."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .recommender import Sample, SoftPromptRecommender


@dataclass
class Stage2TrainingConfig:
    epochs: int = 1  # (int) passes over the (capped) training users
    batch_size: int = 4  # (int) samples per forward pass
    grad_accumulation: int = 1  # (int) forward passes per optimizer step
    lr: float = 1e-4  # (float) Adam learning rate
    max_train_users: int | None = None  # (int|null) seeded cap on training users (CPU budget); null: all
    n_negatives: int = (
        19  # (int) uniformly sampled never-touched items per training sample, re-drawn each epoch
    )
    max_valid_rows: int = 100  # (int) validation rows scored per epoch to pick the best (if epochs > 1)


@dataclass
class Stage2Result:
    step_loss: list[float] = field(default_factory=list)
    step_samples_per_s: list[float] = field(default_factory=list)
    epoch_valid_hit_at_1: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


@torch.no_grad()
def candidate_scores(model: SoftPromptRecommender, samples: list[Sample], batch_size: int = 4) -> np.ndarray:
    """Scores ``(R, C)`` of every sample's candidates, in eval mode."""
    model.eval()
    out = [
        model.scores(samples[i : i + batch_size]).float().cpu() for i in range(0, len(samples), batch_size)
    ]
    return torch.cat(out).numpy()


def train_stage2(
    model: SoftPromptRecommender,
    make_samples: Callable[[int], list[Sample]],
    valid: list[Sample],
    config: Stage2TrainingConfig,
    seed: int,
    evaluate: Callable[[np.ndarray, list[Sample]], float],
    progress: bool = True,
) -> Stage2Result:
    """Train in place; on return ``model`` holds the best epoch's trainable weights.

    Args:
        model: The recommender (frozen LLM inside).
        make_samples: ``epoch -> samples`` (negatives re-drawn each epoch by the caller's seeded generator).
        valid: Frozen validation samples.
        config: Loop settings.
        seed: Seeds the projectors' dropout-free init order and the batch order.
        evaluate: ``(scores, samples) -> Hit@1`` on the validation samples.
        progress: Show a progress bar.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    result = Stage2Result()
    best_score, best_state = float("-inf"), None
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        samples = make_samples(epoch)
        order = torch.randperm(len(samples), generator=generator).tolist()
        batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        model.train()
        optimizer.zero_grad(set_to_none=True)
        bar = tqdm(batches, desc=f"stage2 epoch {epoch}", unit="batch", disable=not progress)
        for step, batch in enumerate(bar, start=1):
            tick = time.perf_counter()
            loss = model.loss([samples[i] for i in batch])
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"stage-2 loss is {loss.item()} at epoch {epoch}, step {step}: training diverged "
                    "(try llms.<key>.dtype float32 or a lower stage2.training.lr)"
                )
            (loss / config.grad_accumulation).backward()
            if step % config.grad_accumulation == 0 or step == len(batches):
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            result.step_loss.append(loss.item())
            result.step_samples_per_s.append(len(batch) / (time.perf_counter() - tick))
            bar.set_postfix(loss=f"{np.mean(result.step_loss[-20:]):.4f}")
        # one epoch leaves nothing to choose: its validation scoring would only cost time (NaN is logged)
        choose = valid and config.epochs > 1
        score = evaluate(candidate_scores(model, valid, config.batch_size), valid) if choose else float("nan")
        result.epoch_valid_hit_at_1.append(score)
        if best_state is None or score > best_score:
            best_score, result.best_epoch = score, epoch
            best_state = copy.deepcopy(model.trainable_state())
    model.load_state_dict(best_state, strict=False)
    result.seconds = time.perf_counter() - started
    return result
