"""Nodes of ``split_sequences``: what every model is trained and judged on, frozen and seeded."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from allmrec_pipeline import contracts
from allmrec_pipeline.seeding import rng_for

from . import candidates as cand
from . import indexing, splitting

logger = logging.getLogger(__name__)


def _truncate(history: np.ndarray, max_seq_len: int) -> np.ndarray:
    """Model input keeps the most recent ``max_seq_len`` items (truncated from the left)."""
    return np.asarray(history[-max_seq_len:], dtype=np.int32)


def index_interactions(
    interactions: pd.DataFrame, items: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Integer indexes and chronological sequences of the source dataset.

    Args:
        interactions: Canonical interactions from ingest_amazon.
        items: Canonical items from ingest_amazon.

    Returns:
        ``item_index``, ``user_index``, ``sequences`` and the index section of the report.
    """
    interactions = contracts.enforce(interactions, "interactions")
    report = indexing.check_interactions(interactions, items, "interactions")
    if report["users_reordered"]:
        logger.warning("%d user(s) had events out of time order: re-sorted", report["users_reordered"])
    item_index, user_index, sequences = indexing.build_indexes(interactions)
    report.update(users=len(user_index), items=len(item_index), interactions=len(interactions))
    return item_index, user_index, sequences, report


def split_users(
    sequences: pd.DataFrame, item_index: pd.DataFrame, split: dict[str, Any], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Hold out cold users, split the rest leave-one-out, label item popularity, apply the few-shot limit.

    Args:
        sequences: Per-user chronological sequences.
        item_index: The item index (its length is the item count).
        split: ``split`` parameters.
        seed: The global seed.

    Returns:
        ``train_sequences`` (after the few-shot limit), ``eval_targets`` (scenario, split, user_idx, history,
        target_item_idx), ``cold_user_sequences`` (full histories of the held-out users), ``item_popularity``
        (from the full training set) and the split section of the report.
    """
    remaining, cold, cold_report = splitting.select_cold_users(
        sequences, int(split["cold_users"]["n_users"]), seed
    )
    train_full, targets, train_only = splitting.leave_one_out(remaining, int(split["min_interactions"]))
    popularity = splitting.item_popularity(
        train_full, len(item_index), split["popularity"]["rule"], float(split["popularity"]["fraction"])
    )
    train = splitting.limit_train_users(train_full, split.get("train_users_limit"), seed)
    cold_targets = pd.DataFrame(
        {
            "split": "test",
            "user_idx": cold["user_idx"].to_numpy(),
            "history": [items[: splitting.COLD_USER_CONTEXT] for items in cold["items"]],
            "target_item_idx": [items[splitting.COLD_USER_CONTEXT] for items in cold["items"]],
        }
    )
    eval_targets = pd.concat(
        [targets.assign(scenario="overall"), cold_targets.assign(scenario="cold_user")], ignore_index=True
    )
    report = {
        "cold_users": cold_report,
        "train_only_users": train_only,
        "min_interactions": int(split["min_interactions"]),
        "train_users": len(train),
        "train_users_before_limit": len(train_full),
        "train_users_limit": split.get("train_users_limit"),
        "train_interactions": int(train["items"].map(len).sum()),
        "popularity_rule": split["popularity"]["rule"],
        "popularity_fraction": float(split["popularity"]["fraction"]),
        "items_by_group": {g: int(n) for g, n in popularity["group"].value_counts().sort_index().items()},
    }
    logger.info("Split: %s", report)
    return train, eval_targets, cold, popularity, report


def build_eval_candidates(
    eval_targets: pd.DataFrame,
    sequences: pd.DataFrame,
    item_popularity: pd.DataFrame,
    split: dict[str, Any],
    evaluate: dict[str, Any],
    seed: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Sample the frozen candidates of every evaluation row, derive cold/warm-item rows, cap each scenario.

    Args:
        eval_targets: Rows to evaluate (scenario ``overall`` valid/test, ``cold_user`` test); the ``cold_item`` and
            ``warm_item`` rows are the ``overall`` rows of each split whose target is in that popularity group.
        sequences: Full sequences of every user (held-out users included), for the never-seen rule.
        item_popularity: Popularity groups, for the ``cold_item`` / ``warm_item`` scenarios.
        split: ``split`` parameters (``n_candidates``, ``max_seq_len``).
        evaluate: ``evaluate`` parameters (``max_users``: the cap per scenario and split).
        seed: The global seed.

    Returns:
        ``eval_candidates(scenario, split, user_idx, target_item_idx, candidates, history)`` and the
        candidates section of the report (rows per scenario and split).
    """
    n_candidates = int(split["n_candidates"])
    seen = cand.seen_items(sequences)
    frames = []
    for scenario, rows in eval_targets.groupby("scenario", sort=True):
        rows = rows.reset_index(drop=True)
        rows["candidates"] = cand.sample_candidates(
            rows["user_idx"].to_numpy(),
            rows["target_item_idx"].to_numpy(),
            seen,
            len(item_popularity),
            n_candidates,
            rng_for(seed, f"candidates/{scenario}"),
        )
        frames.append(rows)
    sampled = pd.concat(frames, ignore_index=True)
    group = item_popularity.set_index("item_idx")["group"]
    overall = sampled[sampled["scenario"] == "overall"]
    target_group = overall["target_item_idx"].map(group).to_numpy()
    for name in ("cold", "warm"):  # test rows to score, validation rows (same rule) to choose weights on
        subset = overall[target_group == name]
        sampled = pd.concat([sampled, subset.assign(scenario=f"{name}_item")], ignore_index=True)
    return _finish_candidates(sampled, split, evaluate, seed)


def _finish_candidates(
    sampled: pd.DataFrame, split: dict[str, Any], evaluate: dict[str, Any], seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Cap each (scenario, split), truncate histories, fix the column order and count the rows."""
    max_users = evaluate.get("max_users")
    capped = [
        cand.cap_rows(rows, max_users, rng_for(seed, f"max_users/{scenario}/{part}"))
        for (scenario, part), rows in sampled.groupby(["scenario", "split"], sort=True)
    ]
    table = pd.concat(capped, ignore_index=True) if capped else sampled
    max_seq_len = int(split["max_seq_len"])
    table = table.assign(
        user_idx=table["user_idx"].astype(np.int32),
        target_item_idx=table["target_item_idx"].astype(np.int32),
        history=[_truncate(h, max_seq_len) for h in table["history"]],
    )[["scenario", "split", "user_idx", "target_item_idx", "candidates", "history"]]
    available = sampled.groupby(["scenario", "split"]).size()
    rows = table.groupby(["scenario", "split"]).size()
    report = {
        "n_candidates": int(split["n_candidates"]),
        "max_users": max_users,
        "rows": {f"{s}.{p}": int(n) for (s, p), n in rows.items()},
        "rows_before_cap": {f"{s}.{p}": int(n) for (s, p), n in available.items()},
    }
    return table.reset_index(drop=True), report


def build_cross_domain_candidates(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    split: dict[str, Any],
    enabled: bool,
    evaluate: dict[str, Any],
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Indexes, sequences and ``cross_domain`` test rows (history: all but the last item) of the second dataset.

    Nothing of it enters source-domain training: its tables live under the ``cross_domain`` namespace, with
    their own item indexes. ``enabled=False`` (``--params cross_domain_enabled=false``) returns empty tables.

    Returns:
        ``item_index``, ``sequences``, ``eval_candidates`` and the report section.
    """
    if not enabled:
        empty = pd.DataFrame()
        return empty, empty, empty, {"enabled": False}
    item_index, _user_index, sequences, report = index_interactions(interactions, items)
    evaluable = sequences[sequences["items"].map(len) >= int(split["min_interactions"])]
    rows = pd.DataFrame(
        {
            "scenario": "cross_domain",
            "split": "test",
            "user_idx": evaluable["user_idx"].to_numpy(),
            "history": [items[:-1] for items in evaluable["items"]],
            "target_item_idx": [items[-1] for items in evaluable["items"]],
        }
    )
    rows["candidates"] = cand.sample_candidates(
        rows["user_idx"].to_numpy(),
        rows["target_item_idx"].to_numpy(),
        cand.seen_items(sequences),
        len(item_index),
        int(split["n_candidates"]),
        rng_for(seed, "candidates/cross_domain"),
    )
    table, candidates_report = _finish_candidates(rows, split, evaluate, seed)
    return item_index, sequences, table, {"enabled": True, **report, **candidates_report}


def summarize_split(
    index_report: dict[str, Any],
    split_report: dict[str, Any],
    candidates_report: dict[str, Any],
    cross_domain_report: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, float]]:
    """Merge the report sections; flatten every count into metrics.

    Returns:
        The ``split_report`` (JSON) and its counts as ``{name: value}`` for MLflow.
    """
    report = {
        "index": index_report,
        "users": split_report,
        "candidates": candidates_report,
        "cross_domain": cross_domain_report,
    }
    metrics: dict[str, float] = {}

    def flatten(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                flatten(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, bool | int | float):
            metrics[prefix] = float(value)

    flatten("", report)
    return report, metrics
