"""Leave-one-out split, held-out cold users, the few-shot user subset and item popularity groups."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.seeding import rng_for

POPULARITY_RULES = ("rank", "mass")
COLD_USER_CONTEXT = 2  # a cold user is evaluated on 2 items of context, then the 3rd as target


def select_cold_users(
    sequences: pd.DataFrame, n_users: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, object]]:
    """Hold out ``n_users`` seeded users, evaluated on their first 3 interactions only.

    Users with exactly 3 interactions are used when there are enough of them (the paper's cold users);
    otherwise users with at least 3 are sampled and truncated to their first 3.

    Returns:
        The remaining sequences, the held-out users' sequences (full, untruncated: negatives must avoid
        every item they touched), and the report section.
    """
    lengths = sequences["items"].map(len)
    exactly_three = sequences.index[lengths == COLD_USER_CONTEXT + 1]
    if len(exactly_three) >= n_users:
        pool, rule = exactly_three, "users with exactly 3 interactions"
    else:
        pool, rule = (
            sequences.index[lengths >= COLD_USER_CONTEXT + 1],
            "first 3 interactions of sampled users",
        )
    if n_users > len(pool):
        raise ConfigError(
            f"split.cold_users.n_users={n_users} but only {len(pool)} users have at least 3 interactions"
        )
    chosen = np.sort(rng_for(seed, "cold_users").choice(pool.to_numpy(), size=n_users, replace=False))
    held_out = sequences.loc[chosen].reset_index(drop=True)
    remaining = sequences.drop(index=chosen).reset_index(drop=True)
    return remaining, held_out, {"rule": rule, "held_out": int(n_users)}


def leave_one_out(sequences: pd.DataFrame, min_interactions: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Train on all but the last two items; valid = the second-to-last, test = the last.

    Users with fewer than ``min_interactions`` (at least 3) are train-only: their whole sequence is training.

    Returns:
        ``train_sequences(user_idx, items)``, ``targets(split, user_idx, history, target_item_idx)`` for
        ``valid`` and ``test`` (history: every earlier item), and the number of train-only users.
    """
    if min_interactions < 3:
        raise ConfigError(
            f"split.min_interactions must be at least 3 (train, valid, test), got {min_interactions}"
        )
    lengths = sequences["items"].map(len).to_numpy()
    evaluated = lengths >= min_interactions
    train_items = [
        items[:-2] if ok else items for items, ok in zip(sequences["items"], evaluated, strict=True)
    ]
    train = pd.DataFrame({"user_idx": sequences["user_idx"].to_numpy(), "items": train_items})
    rows = []
    for user_idx, items in zip(
        sequences.loc[evaluated, "user_idx"], sequences.loc[evaluated, "items"], strict=True
    ):
        rows.append(("valid", user_idx, items[:-2], items[-2]))
        rows.append(("test", user_idx, items[:-1], items[-1]))
    targets = pd.DataFrame(rows, columns=["split", "user_idx", "history", "target_item_idx"])
    return train, targets, int((~evaluated).sum())


def limit_train_users(train: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """The few-shot setting: keep a seeded subset of ``limit`` training users (``None`` keeps all)."""
    if limit is None:
        return train
    if limit <= 0 or limit > len(train):
        raise ConfigError(f"split.train_users_limit must be in 1..{len(train)} or null, got {limit}")
    chosen = np.sort(rng_for(seed, "train_users_limit").choice(len(train), size=limit, replace=False))
    return train.iloc[chosen].reset_index(drop=True)


def item_popularity(train: pd.DataFrame, n_items: int, rule: str, fraction: float) -> pd.DataFrame:
    """Training interaction count per item and its group: ``warm``, ``cold`` or ``middle``.

    - ``rank``: items ranked by count (ties by index); the top ``fraction`` of items are warm, the bottom
      ``fraction`` cold.
    - ``mass``: the most popular items that together hold the top ``fraction`` of interactions are warm, the
      least popular that hold the bottom ``fraction`` are cold (the item crossing the line is included).
    """
    if rule not in POPULARITY_RULES:
        raise ConfigError(f"split.popularity.rule must be one of {POPULARITY_RULES}, got '{rule}'")
    if not 0 < fraction <= 0.5:
        raise ConfigError(f"split.popularity.fraction must be in (0, 0.5], got {fraction}")
    all_items = (
        np.concatenate([np.asarray(items) for items in train["items"]]) if len(train) else np.array([])
    )
    counts = np.bincount(all_items.astype(np.int64), minlength=n_items + 1)[1:]
    item_idx = np.arange(1, n_items + 1, dtype=np.int32)
    # Most popular first; ties broken by the smaller index, so the ranking is total and deterministic.
    order = np.lexsort((item_idx, -counts))
    group = np.full(n_items, "middle", dtype=object)
    if rule == "rank":
        k = math.ceil(fraction * n_items)
        group[order[:k]] = "warm"
        group[order[::-1][:k]] = "cold"
    else:
        total = counts.sum()
        share_before_desc = (np.cumsum(counts[order]) - counts[order]) / total
        group[order[share_before_desc < fraction]] = "warm"
        ascending = order[::-1]
        share_before_asc = (np.cumsum(counts[ascending]) - counts[ascending]) / total
        cold = ascending[share_before_asc < fraction]
        group[cold[group[cold] != "warm"]] = "cold"
    return pd.DataFrame({"item_idx": item_idx, "count": counts.astype(np.int64), "group": group.astype(str)})
