"""Nodes of ``ingest_amazon``: raw source files in, canonical ``interactions`` and ``items`` out."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from allmrec_pipeline import contracts
from allmrec_pipeline.datasets.raw_source import file_exists
from allmrec_pipeline.errors import ConfigError, DataError

from . import cleaning
from .badlines import BadLineLog, ValueRanges
from .sources import resolve_source_kind

logger = logging.getLogger(__name__)


def _counts(interactions: pd.DataFrame) -> dict[str, int]:
    return {
        "users": int(interactions["user_id"].nunique()),
        "items": int(interactions["item_id"].nunique()),
        "interactions": len(interactions),
    }


def value_ranges(source: dict[str, Any]) -> ValueRanges:
    """The accepted timestamp and rating ranges of ``ingest.source`` (a missing or null range: unbounded)."""

    def bounds(key: str) -> tuple[float, float] | None:
        value = source.get(key)
        return None if value is None else (float(value[0]), float(value[1]))

    return ValueRanges(timestamp=bounds("timestamp_range"), rating=bounds("rating_range"))


def read_raw_source(
    raw_files: dict[str, list[str]], source: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Stream the raw files of the configured source kind into raw interactions and items.

    Args:
        raw_files: File paths by role, from the ``raw_source`` catalog entry.
        source: ``ingest.source`` parameters (``enabled``, ``kind``, ``max_bad_fraction``, ``timestamp_range``,
            ``rating_range``).

    Returns:
        Raw interactions, raw items (uncleaned text), and the read section of the report.
    """
    if not source.get("enabled", True):
        logger.info("Source disabled (ingest.source.enabled=false): writing empty tables")
        return contracts.empty("interactions"), contracts.empty("items"), {"enabled": False}
    if "kind" not in source:
        raise ConfigError("parameter 'ingest.source.kind' is missing")
    spec = resolve_source_kind(source["kind"], raw_files)
    missing = [
        f"{role}: {path}" for role, paths in raw_files.items() for path in paths if not file_exists(path)
    ]
    if missing:
        raise ConfigError(
            f"Raw source file(s) not found: {'; '.join(missing)}. Check 'files' of the catalog entry "
            "'raw_source' (conf/<env>/catalog*.yml), or put the files there."
        )
    log = BadLineLog(ranges=value_ranges(source))
    interactions, items = spec.read(raw_files, log)
    log.check(float(source.get("max_bad_fraction", 0.01)))
    if interactions.empty:
        raise DataError(
            f"ingest: no interaction was read from {raw_files} (kind {source['kind']!r}; bad lines: "
            f"{log.to_report()['by_reason']}); an empty table would become the newest version every later "
            "pipeline loads"
        )
    bad = log.to_report()
    if bad["total"]:
        logger.warning(
            "Skipped %d bad line(s): %s (examples: %s)", bad["total"], bad["by_reason"], bad["examples"]
        )
    report = {
        "enabled": True,
        "kind": source["kind"],
        "files": raw_files,
        "timestamps": "real" if spec.real_timestamps else "synthesized from sequence order",
        "bad_lines": bad,
        "raw_item_rows": len(items),
        "raw": _counts(interactions),
    }
    logger.info("Read %s: %s", source["kind"], report["raw"])
    return interactions, items, report


def clean_items(raw_items: pd.DataFrame, text: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Clean item text, resolve duplicate meta rows and apply the missing-title policy.

    Args:
        raw_items: Items as read, one row per meta line.
        text: ``ingest.text`` parameters (``missing_title_policy``, ``placeholder_title``).

    Returns:
        One clean row per item, and the counts of duplicates and missing titles.
    """
    items = cleaning.clean_item_text(raw_items)
    items, duplicates = cleaning.resolve_duplicate_items(items)
    items, missing_titles = cleaning.apply_title_policy(
        items, text.get("missing_title_policy", "drop"), text.get("placeholder_title", "Item {item_id}")
    )
    report = {
        "duplicate_item_rows": duplicates,
        "missing_titles": missing_titles,
        "missing_title_policy": text.get("missing_title_policy", "drop"),
        "items_with_text": len(items),
    }
    logger.info("Items: %s", report)
    return items, report


def filter_interactions(
    raw_interactions: pd.DataFrame,
    items: pd.DataFrame,
    filters: dict[str, Any],
    items_report: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """De-duplicate events, drop unknown items, filter by rating and apply the iterative k-core.

    Args:
        raw_interactions: Interactions as read.
        items: Clean items (the only item ids that may remain).
        filters: ``ingest.filters`` parameters (``rating_threshold``, ``rating_operator``, ``user_k``, ``item_k``).
        items_report: ``clean_items``' report: its count of titles dropped as empty tells the error for too many
            unknown items which of its two causes it is.

    Returns:
        Canonical ``interactions`` and ``items`` (items restricted to those with interactions), and the
        filter section of the report: counts before and after every step, and the k-core passes.
    """
    steps = [{"step": "read", **_counts(raw_interactions)}]
    events = raw_interactions.drop_duplicates(["user_id", "item_id", "timestamp"])
    duplicate_events = len(raw_interactions) - len(events)
    steps.append({"step": "deduplicate_events", **_counts(events)})

    known = events["item_id"].isin(items["item_id"])
    unknown_items = int(events.loc[~known, "item_id"].nunique())
    _check_unknown_share(
        events, known, float(filters["max_unknown_item_fraction"]), (items_report or {}).get("missing_titles")
    )
    events = events[known.to_numpy()]
    steps.append({"step": "drop_items_without_text", **_counts(events)})

    events = cleaning.filter_by_rating(
        events, filters.get("rating_threshold"), filters.get("rating_operator", ">=")
    )
    steps.append({"step": "rating_filter", **_counts(events)})

    events, passes = cleaning.k_core(events, int(filters.get("user_k", 1)), int(filters.get("item_k", 1)))
    steps.append({"step": "k_core", **_counts(events)})

    if len(raw_interactions) and events.empty:
        emptied = next(step["step"] for step in steps if step["interactions"] == 0)
        raise DataError(
            f"ingest: no interaction is left after the step '{emptied}' (interactions per step: "
            f"{[(step['step'], step['interactions']) for step in steps]}); loosen ingest.filters"
        )
    # Stable sort: each user's events in time order, ties kept in file order.
    events = events.sort_values(["user_id", "timestamp"], kind="stable")
    interactions = contracts.enforce(events, "interactions")
    kept_items = contracts.enforce(items[items["item_id"].isin(interactions["item_id"])], "items")
    report = {
        "duplicate_events": duplicate_events,
        "items_without_text": unknown_items,
        "interactions_dropped_for_items_without_text": steps[1]["interactions"] - steps[2]["interactions"],
        "k_core_passes": passes,
        "steps": steps,
        "final": _counts(interactions),
    }
    logger.info("Filtered: %s after %d k-core pass(es)", report["final"], passes)
    return interactions, kept_items, report


def _check_unknown_share(
    events: pd.DataFrame, known: pd.Series, max_fraction: float, missing_titles: int | None = None
) -> None:
    """Fail when more than ``max_fraction`` of the events name an item without a clean row: absent from the items
    file (a join on the wrong id, a truncated file) or dropped for an empty title (``missing_titles`` items, when
    known: the error then says which cause it is and its fix); below it, a WARNING."""
    if not len(events) or known.all():
        return
    unknown = events.loc[~known.to_numpy(), "item_id"]
    share = len(unknown) / len(events)
    examples = list(dict.fromkeys(unknown))[:5]
    message = (
        f"{len(unknown)} of {len(events)} interactions ({share:.1%}) name an item that is absent from the items "
        f"file or was dropped for an empty title ({unknown.nunique()} items, e.g. {examples})"
    )
    if share > max_fraction:
        if missing_titles:
            cause = (
                f". clean_items dropped {missing_titles} items whose title is empty or markup only "
                "(ingest.text.missing_title_policy: drop): fix their titles in the items file, or set "
                "missing_title_policy: placeholder to keep them under ingest.text.placeholder_title; any other "
                "unknown item is absent from the items file (a join on the wrong id?)"
            )
        elif missing_titles == 0:
            cause = (
                ". No title was dropped as empty: the items file lacks these items (a join on the wrong id?)"
            )
        else:
            cause = ""
        raise DataError(
            f"ingest: {message}; more than ingest.filters.max_unknown_item_fraction={max_fraction}{cause}"
        )
    logger.warning("%s: dropped", message)


def summarize_ingest(
    read_report: dict[str, Any], items_report: dict[str, Any], filter_report: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float]]:
    """Merge the report sections and flatten the counts into metrics.

    Returns:
        The ``ingest_report`` (JSON) and a ``{name: value}`` dict of counts for MLflow.
    """
    report = {"read": read_report, "items": items_report, "filter": filter_report}
    if not read_report.get("enabled", True):
        return report, {"enabled": 0.0}
    metrics: dict[str, float] = {"enabled": 1.0, "bad_lines": read_report["bad_lines"]["total"]}
    metrics.update({f"bad_lines.{k}": v for k, v in read_report["bad_lines"]["by_reason"].items()})
    metrics.update({f"raw.{k}": v for k, v in read_report["raw"].items()})
    metrics.update({k: v for k, v in items_report.items() if isinstance(v, int)})
    metrics.update({k: v for k, v in filter_report.items() if isinstance(v, int)})
    for step in filter_report["steps"]:
        metrics.update({f"{step['step']}.{k}": v for k, v in step.items() if k != "step"})
    metrics.update({f"final.{k}": v for k, v in filter_report["final"].items()})
    return report, {name: float(value) for name, value in metrics.items()}
