"""Item co-occurrence in the training sequences: a second collaborative score beside the CF model's.

SASRec reads a user's whole sequence through attention; the co-occurrence score reads only which items followed
which, counted over every training sequence. On warm items the two disagree often enough that their sum ranks
better than either (docs/experiments.md, "a second collaborative score"). The count gate weighs the score as one
more input (``stage2.model.gate_cooccurrence``).

- The table: for each ordered pair of items ``(a, b)`` in one training sequence with ``b`` at most ``window``
  positions after ``a``, ``w(a, b)`` gains 1 and ``w(b, a)`` gains ``backward`` (the pair read backwards).
- The score of a candidate ``c`` for a history: ``Σ_k decay^k · w(h_k, c)`` over the ``n_history`` most recent
  history items ``h_0`` (the latest), ``h_1``, … The gate reads ``log1p`` of it, z-scored per row.

The table is stored as sorted pair keys ``a · n_keys + b`` and their weights (two arrays), so that it travels in
a checkpoint and a lookup is a binary search. Plain NumPy: nothing of Kedro, MLflow or any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from allmrec_pipeline.text_floors import recent_items


@dataclass(frozen=True)
class CooccurrenceTable:
    """Sorted pair keys ``a · n_keys + b`` ``(P,)`` (int64) and their weights ``(P,)`` (float32)."""

    keys: np.ndarray
    weights: np.ndarray
    n_keys: int  # the item index's size plus one (index 0 is padding): keys of items below it are unique

    def lookup(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """``w(first, second)`` elementwise (0 for a pair never seen, or for an item outside the table)."""
        first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
        inside = (first >= 0) & (first < self.n_keys) & (second >= 0) & (second < self.n_keys)
        wanted = np.where(inside, first * self.n_keys + second, -1)
        if not len(self.keys):
            return np.zeros(wanted.shape, dtype=np.float64)
        at = np.clip(np.searchsorted(self.keys, wanted), 0, len(self.keys) - 1)
        found = inside & (self.keys[at] == wanted)
        return np.where(found, self.weights[at].astype(np.float64), 0.0)


def cooccurrence_table(
    sequences: Sequence[Sequence[int]], n_items: int, window: int, backward: float
) -> CooccurrenceTable:
    """The table of ``sequences`` (item indexes in ``1..n_items``, oldest first; 0, padding, skipped).

    Raises:
        ValueError: ``window`` is below 1, ``backward`` negative, or a sequence holds an index outside
            ``0..n_items``.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"the co-occurrence window must be an integer >= 1, not {window!r}")
    if not backward >= 0:
        raise ValueError(f"the co-occurrence backward weight must be >= 0, not {backward!r}")
    n_keys = int(n_items) + 1
    kept = [np.asarray(s, dtype=np.int64) for s in sequences]
    kept = [s[s != 0] for s in kept]
    items = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    bad = (items < 0) | (items >= n_keys)
    if bad.any():
        raise ValueError(
            f"a training sequence holds item index {int(items[bad][0])}, outside the item index (1..{n_items})"
        )
    owner = np.repeat(np.arange(len(kept)), [len(s) for s in kept])
    keys, weights = [], []
    for offset in range(1, window + 1):
        same = owner[offset:] == owner[:-offset] if len(items) > offset else np.zeros(0, dtype=bool)
        first, second = items[:-offset][same], items[offset:][same]
        keys += [first * n_keys + second, second * n_keys + first]
        weights += [np.ones(len(first)), np.full(len(first), float(backward))]
    if not keys:
        return CooccurrenceTable(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), n_keys)
    unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    summed = np.bincount(inverse, weights=np.concatenate(weights), minlength=len(unique))
    keep = summed > 0  # backward 0 leaves reversed pairs at 0: not stored
    return CooccurrenceTable(unique[keep], summed[keep].astype(np.float32), n_keys)


def cooccurrence_scores(
    table: CooccurrenceTable,
    histories: Sequence[Sequence[int]],
    candidates: np.ndarray,
    n_history: int,
    decay: float,
) -> np.ndarray:
    """``(R, C)`` each candidate's co-occurrence score with its row's ``n_history`` most recent history items,
    the latest weighing 1, the one before ``decay``, … (see the module docstring; not log-scaled)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    scores = np.zeros(candidates.shape, dtype=np.float64)
    for row, history in enumerate(histories):
        recent = recent_items(history, n_history)[::-1]  # the latest first
        if not recent:
            continue
        weights = np.asarray(decay, dtype=np.float64) ** np.arange(len(recent))
        pairs = table.lookup(np.asarray(recent)[:, None], candidates[row][None, :])  # (H, C)
        scores[row] = weights @ pairs
    return scores
