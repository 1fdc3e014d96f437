"""Tensors for CF training and candidate scoring, from plain item-index sequences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def pad_left(sequences: Sequence[Sequence[int]], length: int) -> np.ndarray:
    """``(len(sequences), length)`` int64, each sequence's last ``length`` items right-aligned, 0-padded."""
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, items in enumerate(sequences):
        tail = np.asarray(items, dtype=np.int64)[-length:]
        if len(tail):
            out[row, length - len(tail) :] = tail
    return out


def popularity_counts(item_popularity, n_items: int) -> np.ndarray:
    """``(n_items + 1,)`` training interactions per item index (0: padding, and items never seen in training),
    from an ``item_popularity(item_idx, count)`` table."""
    counts = np.zeros(n_items + 1, dtype=np.float64)
    counts[item_popularity["item_idx"].to_numpy()] = item_popularity["count"].to_numpy()
    return counts


@dataclass
class CandidateRows:
    """Frozen evaluation rows: histories ``(R, T)``, candidates ``(R, C)`` and the target's column ``(R,)``."""

    histories: torch.Tensor
    candidates: torch.Tensor
    target_pos: torch.Tensor

    @classmethod
    def build(
        cls,
        histories: Sequence[Sequence[int]],
        candidates: Sequence[Sequence[int]],
        targets: Sequence[int],
        max_len: int,
    ) -> CandidateRows:
        cand = np.asarray([np.asarray(c, dtype=np.int64) for c in candidates]).reshape(len(targets), -1)
        hits = cand == np.asarray(targets, dtype=np.int64)[:, None]
        if not hits.any(axis=1).all():
            bad = int(np.flatnonzero(~hits.any(axis=1))[0])
            raise ValueError(f"evaluation row {bad}: the target item is not among its candidates")
        return cls(
            torch.from_numpy(pad_left(histories, max_len)),
            torch.from_numpy(cand),
            torch.from_numpy(hits.argmax(axis=1)),
        )

    def __len__(self) -> int:
        return len(self.target_pos)


@dataclass
class NextItemExamples:
    """Per-user training examples (SASRec style): inputs ``(U, T)``, next items ``(U, T)``."""

    inputs: torch.Tensor
    positives: torch.Tensor

    @classmethod
    def build(
        cls,
        sequences: Sequence[Sequence[int]],
        max_len: int,
        windows: bool = False,
        stride: int | None = None,
    ) -> NextItemExamples:
        """One example per sequence (its last ``max_len + 1`` items); with ``windows``, a sequence longer than
        that is cut from the end into windows, so every position trains exactly once.

        Windows end every ``stride`` items (default ``max_len``: side by side). A smaller stride overlaps them
        and each window trains only its last ``stride`` targets (a sequence's first window trains all of its
        own), so that every target but a sequence's first ones is predicted from at least
        ``max_len - stride + 1`` items of history, closer to the full history it gets at test time.
        """
        stride = max_len if stride is None else stride
        if not 1 <= stride <= max_len:
            raise ValueError(f"training.window_stride must be in 1..{max_len} (max_seq_len), got {stride}")
        usable = [np.asarray(s, dtype=np.int64) for s in sequences if len(s) >= 2]
        inputs, positives = [], []
        for seq in usable:
            for end in range(len(seq), 1, -stride) if windows else [len(seq)]:
                start = max(0, end - max_len - 1)
                targets = seq[start + 1 : end].copy()
                if windows and start > 0:
                    targets[: len(targets) - stride] = 0  # trained by an earlier window, with more history
                inputs.append(seq[start : end - 1])
                positives.append(targets)
                if start == 0:
                    break  # an earlier window would only repeat this one's targets
        return cls(
            torch.from_numpy(pad_left(inputs, max_len)), torch.from_numpy(pad_left(positives, max_len))
        )

    def __len__(self) -> int:
        return len(self.inputs)


def sample_negatives(
    inputs: torch.Tensor, positives: torch.Tensor, n_items: int, generator: torch.Generator, tries: int = 100
) -> torch.Tensor:
    """One uniform negative per position ``(B, T)``, re-drawn (up to ``tries`` times) where it hits an item
    of the user's own sequence; 0 where the position is padding."""
    seen = torch.cat([inputs, positives[:, -1:]], dim=1)  # (B, T+1): the user's items in this window
    negatives = torch.randint(1, n_items + 1, positives.shape, generator=generator)
    for _ in range(tries):
        clash = (negatives.unsqueeze(-1) == seen.unsqueeze(1)).any(-1)  # (B, T)
        if not clash.any():
            break
        negatives[clash] = torch.randint(1, n_items + 1, (int(clash.sum()),), generator=generator)
    return negatives.masked_fill(positives == 0, 0)
