"""Stage-1 training: the frozen backbone's outputs are computed once; each step encodes the batch's item
texts through the (fine-tuned) SBERT and trains the four alignment networks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from allmrec_pipeline import distributed
from allmrec_pipeline.progress import progress_bar
from allmrec_pipeline.resume import TrainingCheckpoints, restore_rng, rng_state

from .alignment import LOSS_TERMS, CollaborativeTextAlignment
from .base import CFBackbone
from .data import pad_left
from .text_encoder import CachedTextEncoder, PrecomputedTextEncoder

logger = logging.getLogger(__name__)


@dataclass
class Stage1TrainingConfig:
    """Stage 1's loop; no field has a default: the values come from ``stage1.training``."""

    epochs: int  # (int) passes over the training signal with SBERT fine-tuned
    frozen_text_epochs: int  # (int) further passes with SBERT frozen and every item text encoded once
    batch_size: int  # (int) users per step
    lr: float  # (float) Adam learning rate of the alignment networks (and of SBERT unless sbert_lr)
    sbert_lr: float | None  # (float|null) Adam learning rate of SBERT's trainable layers; null: lr
    all_items: bool  # (bool) every position of every training sequence (A-LLMRec_all), not just the last item
    max_examples: int | None  # (int|null) seeded cap on training examples per epoch (CPU budget); null: all
    recall_sample: int  # (int) items sampled for the alignment Recall@10 diagnostic


@dataclass
class UserSignal:
    """Frozen CF inputs of the training examples: ``x_u`` ``(M, d)``, the positive ``(M,)`` and, for negative
    sampling, the items of the example's user ``(M, L)`` (0-padded)."""

    users: torch.Tensor
    positives: torch.Tensor
    seen: torch.Tensor


@torch.no_grad()
def frozen_user_signal(
    backbone: CFBackbone, sequences: list[np.ndarray], all_items: bool, batch_size: int = 512
) -> UserSignal:
    """Run the frozen backbone once over every training sequence.

    The signal is each user's last training item, with ``x_u`` from the items before it; with ``all_items``
    every position ``t >= 1`` is an example with ``x_u`` from items ``< t``.
    """
    backbone.eval()
    device = backbone.item_embeddings.device  # the backbone runs there; the signal comes back to the CPU
    max_len = backbone.config.max_seq_len
    usable = [np.asarray(s, dtype=np.int64) for s in sequences if len(s) >= 2]
    users, positives, owners = [], [], []
    for start in range(0, len(usable), batch_size):
        chunk = usable[start : start + batch_size]
        history = torch.from_numpy(pad_left([s[:-1] for s in chunk], max_len))  # (B, T)
        if not all_items:
            users.append(backbone.user_representation(history.to(device)).cpu())
            positives.append(torch.as_tensor([int(s[-1]) for s in chunk]))
            owners.append(torch.arange(start, start + len(chunk)))
            continue
        feats = backbone.sequence_features(history.to(device)).cpu()  # (B, T, d): t predicts the next item
        nexts = torch.from_numpy(pad_left([s[1:] for s in chunk], max_len))  # (B, T)
        keep = nexts != 0
        users.append(feats[keep])
        positives.append(nexts[keep])
        owners.append((torch.arange(start, start + len(chunk)).unsqueeze(1).expand_as(nexts))[keep])
    seen = torch.from_numpy(pad_left(usable, max(len(s) for s in usable)))
    owner = torch.cat(owners)
    return UserSignal(torch.cat(users), torch.cat(positives), seen[owner])


def sample_negative_items(
    signal: UserSignal, n_items: int, generator: torch.Generator, tries: int = 10
) -> torch.Tensor:
    """One uniform negative per example that its user never interacted with (re-drawn on a clash)."""
    negatives = torch.randint(1, n_items + 1, signal.positives.shape, generator=generator)
    for _ in range(tries):
        clash = (negatives.unsqueeze(1) == signal.seen).any(1)
        if not clash.any():
            break
        negatives[clash] = torch.randint(1, n_items + 1, (int(clash.sum()),), generator=generator)
    return negatives


@dataclass
class Stage1Result:
    history: dict[str, list[float]] = field(default_factory=dict)  # per-epoch curves
    seconds: list[float] = field(default_factory=list)  # training seconds per epoch (diagnostics excluded)
    steps: list[int] = field(default_factory=list)  # optimizer steps per epoch
    text_vectors: PrecomputedTextEncoder | None = None  # the final SBERT's output for every item, when built
    resumed_from_epoch: int = 0  # the checkpointed epoch a rerun continued after; 0: started afresh


@torch.no_grad()
def alignment_diagnostics(
    alignment: CollaborativeTextAlignment,
    item_table: torch.Tensor,
    text_encoder: CachedTextEncoder | PrecomputedTextEncoder,
    recall_sample: int,
    generator: torch.Generator,
) -> dict[str, float]:
    """Over ``recall_sample`` sampled items: mean cosine(e_i, q_i) and alignment Recall@10 (is ``e_i`` among
    the 10 nearest of all ``e``, Euclidean as the matching loss, to ``q_i``?); over all items: the
    per-dimension spread of ``e`` (a collapse guard). Only the sampled items go through SBERT."""
    e = alignment.joint_embeddings(item_table[1:])  # (N, d')
    spread = e.std(dim=0)
    sample = torch.randperm(len(e), generator=generator)[: min(recall_sample, len(e))].to(e.device)
    q = alignment.text_embeddings(text_encoder.encode_all(sample + 1))  # (S, d'); item index = row + 1
    distances = torch.cdist(q, e)  # (S, N)
    own = distances.gather(1, sample.unsqueeze(1))
    ranks = 1 + (distances < own).sum(dim=1)
    return {
        "cosine_e_q": float(F.cosine_similarity(e[sample], q, dim=1).mean()),
        "e_std_mean": float(spread.mean()),
        "e_std_min": float(spread.min()),
        "alignment_recall_at_10": float((ranks <= 10).float().mean()),
        "alignment_recall_random": min(10, len(e)) / len(e),
    }


def train_alignment(
    alignment: CollaborativeTextAlignment,
    backbone: CFBackbone,
    text_encoder: CachedTextEncoder,
    signal: UserSignal,
    config: Stage1TrainingConfig,
    seed: int,
    progress: bool = True,
    user_vectors: Callable[[torch.Tensor], torch.Tensor] | None = None,
    fused_adam: bool = True,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    checkpoints: TrainingCheckpoints | None = None,
) -> Stage1Result:
    """Train the alignment networks (and SBERT's trainable layers) in place.

    ``config.epochs`` epochs fine-tune SBERT with the alignment networks; then ``config.frozen_text_epochs``
    epochs train the alignment networks alone on the fine-tuned SBERT's outputs, each item text encoded once
    (that table is returned as ``text_vectors``, so nothing encodes the items again).
    ``user_vectors(example_indexes) -> (B, d)`` replaces the precomputed ``signal.users`` (the benchmark's
    naive variant recomputes them with the backbone at every step, as the authors' code does);
    ``fused_adam=False`` is the authors' plain ``torch.optim.Adam`` (same updates, a slower step on CPUs).
    ``on_epoch(epoch, figures)`` is called as each epoch ends (its losses and diagnostics). With ``checkpoints``
    the loop saves its whole state after every epoch (alignment, SBERT's trainable weights, optimizer,
    generators, curves) and resumes from a checkpoint it finds, ending as an uninterrupted run would; the file
    is removed when training ends. Under ``torchrun`` (``distributed``) each rank encodes and scores its share of
    every batch (``batch_size`` is the global batch) and the gradients are summed before each step.
    """
    torch.manual_seed(seed + distributed.current().rank)  # each rank its own dropout; the sampler is shared
    generator = torch.Generator().manual_seed(seed)
    item_table = backbone.item_embeddings.detach()  # (N+1, d), frozen
    groups = [
        {"params": [p for p in alignment.parameters() if p.requires_grad], "lr": config.lr},
        {
            "params": [p for p in text_encoder.parameters() if p.requires_grad],
            "lr": config.lr if config.sbert_lr is None else config.sbert_lr,
        },
    ]
    # fused: one kernel for the update of SBERT's 22.7M weights instead of a loop over tensors
    distributed.broadcast_parameters(p for g in groups for p in g["params"])
    optimizer = torch.optim.Adam([g for g in groups if g["params"]], fused=fused_adam)
    result = Stage1Result(history={f"loss_{name}": [] for name in ("total", *LOSS_TERMS)})
    if alignment.config.standardize_inputs:  # statistics of all CF rows and of a seeded sample of item texts
        sample = torch.randperm(backbone.n_items, generator=generator)[: config.recall_sample] + 1
        alignment.fit_input_scales(item_table[1:], text_encoder.encode_all(sample))
    encoder: CachedTextEncoder | PrecomputedTextEncoder = text_encoder
    trainable_text = {name: p for name, p in text_encoder.named_parameters() if p.requires_grad}
    saved = checkpoints.load() if checkpoints is not None else None
    if saved is not None:
        alignment.load_state_dict(saved["alignment"])
        with torch.no_grad():
            for name, value in saved["text_encoder"].items():
                trainable_text[name].copy_(value)
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        restore_rng(saved["rng"])
        result.history, result.seconds, result.steps = saved["history"], saved["seconds"], saved["steps"]
        result.resumed_from_epoch = saved["epoch"]
        logger.info("stage 1: resuming after epoch %d from %s", saved["epoch"], checkpoints.path)
    total_epochs = config.epochs + config.frozen_text_epochs
    for epoch in range(result.resumed_from_epoch + 1, total_epochs + 1):
        start = time.perf_counter()
        cap = config.max_examples
        # SBERT is done: its outputs become a fixed table (Adam skips its weights, whose grads stay unset)
        if epoch > config.epochs:
            if not isinstance(encoder, PrecomputedTextEncoder):
                encoder = PrecomputedTextEncoder.from_encoder(text_encoder, backbone.n_items)
                result.text_vectors = encoder
            cap = None  # the cap bounds SBERT's cost, which is gone
        alignment.train()
        text_encoder.train()
        steps, sums = _train_epoch(
            alignment, backbone, item_table, encoder, signal, optimizer, generator, config.batch_size, cap,
            user_vectors, f"stage1 epoch {epoch}" + (" (SBERT frozen)" if epoch > config.epochs else ""),
            progress,
        )  # fmt: skip
        result.seconds.append(time.perf_counter() - start)
        result.steps.append(steps)
        for key, value in sums.items():
            result.history[key].append(value / max(steps, 1))
        alignment.eval()
        for key, value in alignment_diagnostics(
            alignment, item_table, encoder, config.recall_sample, generator
        ).items():
            result.history.setdefault(key, []).append(value)
        if on_epoch is not None:
            figures = {key: values[-1] for key, values in result.history.items()}
            on_epoch(epoch, {**figures, "epoch_seconds": result.seconds[-1]})
        if checkpoints is not None:
            checkpoints.save(
                {
                    "epoch": epoch,
                    "alignment": alignment.state_dict(),
                    "text_encoder": trainable_text,
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "rng": rng_state(),
                    "history": result.history,
                    "seconds": result.seconds,
                    "steps": result.steps,
                }
            )
    if checkpoints is not None:
        checkpoints.clear()
    return result


def _train_epoch(
    alignment: CollaborativeTextAlignment,
    backbone: CFBackbone,
    item_table: torch.Tensor,
    text_encoder: CachedTextEncoder | PrecomputedTextEncoder,
    signal: UserSignal,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    batch_size: int,
    max_examples: int | None,
    user_vectors: Callable[[torch.Tensor], torch.Tensor] | None,
    description: str,
    progress: bool,
) -> tuple[int, dict[str, float]]:
    """One pass over (a seeded cap of) the examples, a fresh negative each; returns steps and loss sums. The
    examples and negatives are drawn on the CPU and each batch moves to the backbone's device."""
    device = item_table.device
    labels = torch.tensor([1.0, 0.0], device=device)
    ranks = distributed.current()
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    negatives = sample_negative_items(signal, backbone.n_items, generator)
    order = torch.randperm(len(signal.positives), generator=generator)
    if max_examples is not None:
        order = order[:max_examples]
    sums = dict.fromkeys(("loss_total", *(f"loss_{name}" for name in LOSS_TERMS)), 0.0)
    steps = 0
    bar = progress_bar(order.split(batch_size), desc=description, unit="step", disable=not progress)
    for batch in bar:
        idx = ranks.part(batch)  # the whole batch in one process
        weight = distributed.share(len(idx), len(batch))
        optimizer.zero_grad(set_to_none=True)
        if len(idx):
            items = torch.stack([signal.positives[idx], negatives[idx]], dim=1)  # (B, 2)
            terms = alignment.losses(
                (signal.users[idx] if user_vectors is None else user_vectors(idx)).to(device),
                item_table[items.to(device)],
                text_encoder(items),
                labels.expand(len(idx), 2),
                backbone.score_vectors,
            )
            loss = alignment.total_loss(terms)
            (loss * weight if ranks.world > 1 else loss).backward()
        else:
            terms, loss = dict.fromkeys(LOSS_TERMS, torch.zeros(())), torch.zeros(())
        distributed.sum_gradients(trainable)
        optimizer.step()
        steps += 1
        figures = distributed.sum_values([v.item() * weight for v in (loss, *(terms[n] for n in LOSS_TERMS))])
        for key, value in zip(sums, figures, strict=True):  # loss_total, then the terms in LOSS_TERMS order
            sums[key] += value
        bar.set_postfix(refresh=False, loss=f"{sums['loss_total'] / steps:.4f}")
    return steps, sums
