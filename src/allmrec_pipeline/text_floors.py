"""LLM-free text floors: what a heuristic reading the titles already achieves on the frozen rows.

An LLM-based recommender claims to add *text understanding* to the CF model. These scorers are the levels it
must clear to show that the LLM reads something a heuristic does not. None of them trains anything.

- ``text_overlap``: the Jaccard similarity between a candidate title's word set and the union of the word sets
  of the user's last ``n_history`` history titles. Words are the maximal runs of ``[a-z0-9]`` in the
  lower-cased title (``"Dr. Bronner's Magic-Soap, 16oz"`` → ``{dr, bronner, s, magic, soap, 16oz}``). An
  empty union scores 0 for every candidate.
- ``text_cosine``: the cosine between a candidate's text vector and the mean of the user's last ``n_history``
  history vectors (vectors from a frozen sentence encoder, unit length, encoded once per item).
- ``cf_text``: ``z(cf) + w · z(text_overlap)``, each score z-scored within its row (a row whose scores are all
  equal z-scores to zeros), with one weight ``w`` chosen on validation rows. ``w = 0`` ranks exactly as ``cf``.

This module is plain NumPy: it knows nothing of Kedro, MLflow or any model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")


def title_words(title: str) -> frozenset[str]:
    """The lower-cased alphanumeric words of a title (see the module docstring)."""
    return frozenset(_WORD.findall(str(title).lower()))


def recent_items(history: Sequence[int], n_history: int) -> list[int]:
    """The history's ``n_history`` most recent item indexes, oldest first (0, padding, skipped)."""
    return [int(i) for i in history if int(i) != 0][-n_history:]


def overlap_scores(
    histories: Sequence[Sequence[int]],
    candidates: np.ndarray,
    words: Sequence[frozenset[str]],
    n_history: int,
) -> np.ndarray:
    """``text_overlap`` scores ``(R, C)``.

    Args:
        histories: Per row, the history's item indexes, oldest first (0, padding, is skipped).
        candidates: ``(R, C)`` candidate item indexes.
        words: ``title_words`` per item index.
        n_history: Only the most recent ``n_history`` history items count.
    """
    scores = np.zeros(candidates.shape, dtype=np.float64)
    for row, (history, cands) in enumerate(zip(histories, candidates, strict=True)):
        recent = recent_items(history, n_history)
        seen = frozenset().union(*(words[i] for i in recent)) if recent else frozenset()
        if not seen:
            continue
        for col, item in enumerate(cands):
            own = words[int(item)]
            union = len(own | seen)
            scores[row, col] = len(own & seen) / union if union else 0.0
    return scores


def cosine_scores(
    histories: Sequence[Sequence[int]], candidates: np.ndarray, vectors: np.ndarray, n_history: int
) -> np.ndarray:
    """``text_cosine`` scores ``(R, C)`` from unit-length item vectors ``(N+1, d)`` (row 0: padding, zero)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    scores = np.zeros(candidates.shape, dtype=np.float64)
    for row, (history, cands) in enumerate(zip(histories, candidates, strict=True)):
        recent = recent_items(history, n_history)
        if not recent:
            continue
        profile = vectors[recent].mean(axis=0)
        norm = np.linalg.norm(profile)
        if norm == 0:
            continue
        scores[row] = vectors[np.asarray(cands, dtype=np.int64)] @ (profile / norm)
    return scores


def zscore_rows(scores: np.ndarray) -> np.ndarray:
    """Each row minus its mean, over its standard deviation; a constant row becomes zeros."""
    scores = np.asarray(scores, dtype=np.float64)
    centred = scores - scores.mean(axis=1, keepdims=True)
    spread = scores.std(axis=1, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def fuse(cf_scores: np.ndarray, text_scores: np.ndarray, weight: float) -> np.ndarray:
    """``cf_text``: ``z(cf) + weight · z(text)`` per row."""
    return zscore_rows(cf_scores) + float(weight) * zscore_rows(text_scores)
