"""The text matcher: how close a candidate's title lies to the user's recent history titles, in a sentence
encoder's space adapted to what users buy next.

A candidate ``c`` scores ``max_h  v_h · (v_c + A Bᵀ v_c)`` over the user's ``n_history`` most recent history
items ``h`` (``v``: the frozen, unit-length title vectors; ``A``, ``B``: ``(d, rank)``). ``A`` starts at zero, so
an untrained matcher scores the cosine with the nearest history title. Training (``train_text_matcher``) fits
``A`` and ``B`` on the training sequences' next-item transitions whose next item has at most ``max_count``
training interactions, against uniformly drawn negatives: the relevance of a rarely bought item to a history,
read from its title alone, which is what a cold candidate needs and what the CF model cannot give it.

Plain PyTorch and NumPy: nothing of Kedro or MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from allmrec_pipeline.progress import progress_bar
from allmrec_pipeline.text_floors import recent_items

logger = logging.getLogger(__name__)


class TextMatcher(nn.Module):
    """``A``, ``B`` ``(dim, rank)``: the low-rank adaptation of the candidate's title vector."""

    def __init__(self, dim: int, rank: int, seed: int = 0) -> None:
        super().__init__()
        if rank < 1 or dim < 1:
            raise ValueError(f"the text matcher needs dim >= 1 and rank >= 1, got dim={dim}, rank={rank}")
        self.a = nn.Parameter(torch.zeros(dim, rank))
        # its own generator: building a matcher leaves the global seed (the head's, the projectors') unmoved
        generator = torch.Generator().manual_seed(seed)
        self.b = nn.Parameter(torch.randn(dim, rank, generator=generator) * 0.01)

    def forward(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """``(R, C)`` scores from the history vectors ``(R, H, d)`` (a padding row is all zeros) and the
        candidates' ``(R, C, d)``; a row without history scores 0."""
        adapted = candidates + (candidates @ self.b) @ self.a.T
        sims = torch.einsum("rhd,rcd->rch", history, adapted)
        present = (history.abs().sum(-1) > 0)[:, None, :]  # (R, 1, H)
        best = sims.masked_fill(~present, float("-inf")).max(-1).values
        return torch.where(present.any(-1), best, torch.zeros_like(best))


def recent_matrix(histories: Sequence[Sequence[int]], n_history: int) -> np.ndarray:
    """``(R, n_history)`` each history's most recent non-padding items, right-aligned, 0-padded on the left."""
    out = np.zeros((len(histories), n_history), dtype=np.int64)
    for row, history in enumerate(histories):
        recent = recent_items(history, n_history)
        if recent:
            out[row, n_history - len(recent) :] = recent
    return out


@torch.no_grad()
def match_scores(
    matcher: TextMatcher,
    histories: Sequence[Sequence[int]],
    candidates: np.ndarray,
    vectors: torch.Tensor,
    n_history: int,
) -> np.ndarray:
    """The matcher's scores ``(R, C)`` of ``candidates`` ``(R, C)`` for ``histories``; ``vectors`` ``(N+1, d)``
    (row 0, the padding, zeros; pass a float32 tensor on the matcher's device to save a copy per call)."""
    vectors = torch.as_tensor(vectors, dtype=torch.float32, device=matcher.a.device)
    recent = torch.from_numpy(recent_matrix(histories, n_history)).to(vectors.device)
    cands = torch.as_tensor(np.asarray(candidates, dtype=np.int64)).to(vectors.device)
    return matcher(vectors[recent], vectors[cands]).double().cpu().numpy()


@dataclass
class MatcherTraining:
    """``stage2.training.matcher_*``: the text matcher's fit."""

    steps: int  # optimizer steps
    batch_size: int  # transitions per step
    negatives: int  # uniformly drawn negatives per transition
    lr: float  # Adam's learning rate
    max_count: (
        int | None
    )  # only transitions whose next item has at most this many training interactions; None: all


def transitions(
    sequences: Sequence[Sequence[int]], counts: np.ndarray, n_history: int, max_count: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Every next-item transition of ``sequences`` whose next item has at most ``max_count`` interactions in
    ``counts`` (``None``: every transition): ``(T, n_history)`` recent histories and ``(T,)`` next items."""
    histories, targets = [], []
    for sequence in sequences:
        items = [int(i) for i in sequence if int(i) != 0]
        for position in range(1, len(items)):
            if max_count is None or counts[items[position]] <= max_count:
                histories.append(items[:position][-n_history:])
                targets.append(items[position])
    return recent_matrix(histories, n_history), np.asarray(targets, dtype=np.int64)


def train_text_matcher(
    matcher: TextMatcher,
    sequences: Sequence[Sequence[int]],
    vectors: torch.Tensor,
    counts: np.ndarray,
    n_history: int,
    config: MatcherTraining,
    seed: int,
    progress: bool = True,
) -> dict[str, float]:
    """Fit ``matcher`` (in place, left frozen) by softmax cross-entropy of each transition's next item against
    ``config.negatives`` items drawn uniformly from the ``N`` items (a learned temperature scales the scores).
    Returns the transitions used and the mean loss of the first and the last 10% of steps."""
    vectors = torch.as_tensor(vectors, dtype=torch.float32).to(matcher.a.device)
    recent, targets = transitions(sequences, counts, n_history, config.max_count)
    if not len(targets):
        raise ValueError(
            f"no training transition has a next item with at most {config.max_count} interactions: "
            "raise stage2.training.matcher_max_count or set stage2.model.gate_cosine_rank to null"
        )
    generator = np.random.default_rng(seed)  # the only randomness: the global torch seed stays unmoved
    temperature = nn.Parameter(torch.tensor(10.0, device=vectors.device))
    matcher.requires_grad_(True).train()
    optimizer = torch.optim.Adam([*matcher.parameters(), temperature], lr=config.lr)
    labels = torch.zeros(config.batch_size, dtype=torch.long, device=vectors.device)
    losses = []
    for _ in progress_bar(range(config.steps), desc="text matcher", unit="step", disable=not progress):
        rows = generator.integers(0, len(targets), config.batch_size)
        negatives = generator.integers(1, len(vectors), (config.batch_size, config.negatives))
        candidates = torch.from_numpy(np.concatenate([targets[rows, None], negatives], axis=1))
        history = torch.from_numpy(recent[rows])
        scores = matcher(vectors[history.to(vectors.device)], vectors[candidates.to(vectors.device)])
        scores = scores * temperature
        loss = nn.functional.cross_entropy(scores, labels[: len(rows)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    matcher.requires_grad_(False).eval()
    tenth = max(1, len(losses) // 10)
    figures = {
        "transitions": float(len(targets)),
        "first_loss": float(np.mean(losses[:tenth])) if losses else float("nan"),
        "last_loss": float(np.mean(losses[-tenth:])) if losses else float("nan"),
    }
    logger.info(
        "Text matcher: %d transitions, loss %.3f -> %.3f over %d steps",
        len(targets),
        figures["first_loss"],
        figures["last_loss"],
        config.steps,
    )
    return figures
