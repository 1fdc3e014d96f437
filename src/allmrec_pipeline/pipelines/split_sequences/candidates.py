"""Frozen evaluation candidates: the target plus negatives the user never touched, in seeded order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from allmrec_pipeline.errors import DataError


def sample_candidates(
    user_idx: np.ndarray,
    targets: np.ndarray,
    seen: dict[int, set[int]],
    n_items: int,
    n_candidates: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """For each row, ``n_candidates - 1`` distinct negatives drawn uniformly from the items (1..n_items) the
    user never interacted with (``seen`` is the user's whole history, valid and test included), plus the
    target, shuffled so that the target's position is uniform.
    """
    need = n_candidates - 1
    rows = []
    for user, target in zip(user_idx, targets, strict=True):
        excluded = seen[int(user)]
        if n_items - len(excluded) < need:
            raise DataError(
                f"user_idx {user} touched {len(excluded)} of {n_items} items: fewer than {need} negatives are left"
            )
        negatives: list[int] = []
        chosen: set[int] = set()
        while len(negatives) < need:
            for item in rng.integers(1, n_items + 1, size=2 * need):
                item = int(item)
                if item not in excluded and item not in chosen:
                    chosen.add(item)
                    negatives.append(item)
                    if len(negatives) == need:
                        break
        rows.append(rng.permutation(np.asarray([int(target), *negatives], dtype=np.int32)))
    return rows


def seen_items(*sequence_tables: pd.DataFrame) -> dict[int, set[int]]:
    """Every item each user interacted with, over the given ``sequences`` tables."""
    seen: dict[int, set[int]] = {}
    for table in sequence_tables:
        for user, items in zip(table["user_idx"], table["items"], strict=True):
            seen.setdefault(int(user), set()).update(int(i) for i in items)
    return seen


def cap_rows(rows: pd.DataFrame, max_rows: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """A seeded sample of at most ``max_rows`` rows, in their original order (``None`` keeps all)."""
    if max_rows is None or len(rows) <= max_rows:
        return rows
    keep = np.sort(rng.choice(len(rows), size=max_rows, replace=False))
    return rows.iloc[keep]
