"""Integer indexes and chronological per-user sequences, with the input checks they rely on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from allmrec_pipeline.errors import DataError


def check_interactions(interactions: pd.DataFrame, items: pd.DataFrame, table: str) -> dict[str, int]:
    """Fail on an empty table or on items without a row in ``items``; count users whose rows were not in
    time order (they are re-sorted, stably, and counted).

    Returns:
        ``{"users_reordered": n}``.
    """
    if interactions.empty:
        raise DataError(
            f"'{table}' is empty: run ingest_amazon first, or check its filters (k-core too strict?)"
        )
    unknown = ~interactions["item_id"].isin(items["item_id"])
    if unknown.any():
        examples = interactions.loc[unknown, "item_id"].drop_duplicates().head(5).tolist()
        raise DataError(
            f"'{table}' has {int(unknown.sum())} interaction(s) with {interactions.loc[unknown, 'item_id'].nunique()} "
            f"item id(s) missing from the items table, e.g. {examples}"
        )
    same_user = interactions["user_id"].to_numpy()[1:] == interactions["user_id"].to_numpy()[:-1]
    backwards = same_user & (np.diff(interactions["timestamp"].to_numpy()) < 0)
    reordered = interactions["user_id"].iloc[1:][backwards].nunique()
    return {"users_reordered": int(reordered)}


def build_indexes(interactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Item and user indexes (both 1-based, in sorted-id order; 0 is padding) and per-user sequences.

    Returns:
        ``item_index(item_id, item_idx)``, ``user_index(user_id, user_idx)`` and
        ``sequences(user_idx, items: list[int32], timestamps: list[int64])`` in chronological order
        (ties keep the table's order).
    """
    item_ids = np.sort(interactions["item_id"].astype(str).unique())
    user_ids = np.sort(interactions["user_id"].astype(str).unique())
    item_index = pd.DataFrame(
        {"item_id": item_ids, "item_idx": np.arange(1, len(item_ids) + 1, dtype=np.int32)}
    )
    user_index = pd.DataFrame(
        {"user_id": user_ids, "user_idx": np.arange(1, len(user_ids) + 1, dtype=np.int32)}
    )
    events = pd.DataFrame(
        {
            "user_idx": np.searchsorted(user_ids, interactions["user_id"].astype(str)).astype(np.int32) + 1,
            "item_idx": np.searchsorted(item_ids, interactions["item_id"].astype(str)).astype(np.int32) + 1,
            "timestamp": interactions["timestamp"].to_numpy(dtype=np.int64),
        }
    ).sort_values(["user_idx", "timestamp"], kind="stable")
    grouped = events.groupby("user_idx", sort=True)
    sequences = pd.DataFrame(
        {
            "user_idx": np.asarray(list(grouped.groups), dtype=np.int32),
            "items": [group.to_numpy(dtype=np.int32) for _, group in grouped["item_idx"]],
            "timestamps": [group.to_numpy(dtype=np.int64) for _, group in grouped["timestamp"]],
        }
    )
    return item_index, user_index, sequences
