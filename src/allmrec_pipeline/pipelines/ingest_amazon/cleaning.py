"""Item-text cleaning, duplicate resolution, rating filter and the iterative k-core."""

from __future__ import annotations

import html
import operator
import re
import unicodedata

import numpy as np
import pandas as pd

from allmrec_pipeline.contracts import CATEGORY_SEPARATOR
from allmrec_pipeline.errors import ConfigError

_TAG = re.compile(r"<[^>]*(?:>|$)")  # an unclosed tag at the end counts as a tag
_SPACE = re.compile(r"\s+")
RATING_OPERATORS = {">=": operator.ge, ">": operator.gt}
TITLE_POLICIES = ("drop", "placeholder")


def clean_text(value: object) -> str:
    """Unescape HTML entities, strip tags and invisible format characters (zero-width spaces and joiners, soft
    hyphens, byte-order marks: Unicode category ``Cf``) and normalise whitespace; anything not a string becomes
    ``""``, so an invisible-only title counts as missing."""
    if not isinstance(value, str):
        return ""
    text = _TAG.sub(" ", html.unescape(value))
    text = "".join(c for c in text if unicodedata.category(c) != "Cf") if not text.isascii() else text
    return _SPACE.sub(" ", text).strip()


def first_description(value: object) -> str:
    """The first entry that is non-empty after cleaning, for a list; the cleaned text for a string."""
    if isinstance(value, list | tuple | np.ndarray):
        for entry in value:
            cleaned = clean_text(entry)
            if cleaned:
                return cleaned
        return ""
    return clean_text(value)


def category_text(labels: object) -> str:
    """An item's raw category labels as the ``items`` table stores them: each cleaned (``clean_text``; a
    ``|`` inside a label becomes ``/``), empty ones and repeats dropped, joined by ``|``; ``""`` for none."""
    if not isinstance(labels, list | tuple | np.ndarray):
        return ""
    cleaned = (clean_text(label).replace(CATEGORY_SEPARATOR, "/") for label in labels)
    return CATEGORY_SEPARATOR.join(dict.fromkeys(label for label in cleaned if label))


def clean_item_text(items: pd.DataFrame) -> pd.DataFrame:
    """Clean ``title`` and ``description`` (and ``category``, where the source has one) of a raw items frame."""
    cleaned = items.copy()
    cleaned["title"] = [clean_text(v) for v in items["title"]]
    cleaned["description"] = [first_description(v) for v in items["description"]]
    if "category" in items.columns:
        cleaned["category"] = [category_text(v) for v in items["category"]]
    return cleaned


def resolve_duplicate_items(items: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep one row per ``item_id``: the first complete row (title and description), else the first with a
    title, else the first. File order breaks ties, so the result is deterministic.

    Returns:
        The de-duplicated frame (in first-appearance order) and the number of rows removed.
    """
    completeness = np.where(
        (items["title"] != "") & (items["description"] != ""), 0, np.where(items["title"] != "", 1, 2)
    )
    ranked = items.assign(_completeness=completeness).sort_values("_completeness", kind="stable")
    kept = ranked.drop_duplicates("item_id", keep="first").sort_index().drop(columns="_completeness")
    return kept.reset_index(drop=True), len(items) - len(kept)


def apply_title_policy(items: pd.DataFrame, policy: str, placeholder: str) -> tuple[pd.DataFrame, int]:
    """Drop (or fill with ``placeholder.format(item_id=...)``) items whose cleaned title is empty.

    Returns:
        The items and the number of items whose title was missing.
    """
    if policy not in TITLE_POLICIES:
        raise ConfigError(f"ingest.text.missing_title_policy must be one of {TITLE_POLICIES}, got '{policy}'")
    missing = items["title"] == ""
    if policy == "drop":
        return items[~missing].reset_index(drop=True), int(missing.sum())
    filled = items.copy()
    filled.loc[missing, "title"] = [placeholder.format(item_id=i) for i in items.loc[missing, "item_id"]]
    return filled, int(missing.sum())


def filter_by_rating(interactions: pd.DataFrame, threshold: float | None, op: str) -> pd.DataFrame:
    """Keep events whose rating passes ``rating <op> threshold``; ``threshold: null`` keeps all."""
    if threshold is None:
        return interactions
    if op not in RATING_OPERATORS:
        raise ConfigError(
            f"ingest.filters.rating_operator must be one of {list(RATING_OPERATORS)}, got '{op}'"
        )
    if interactions["rating"].isna().all() and len(interactions):
        raise ConfigError(
            "ingest.filters.rating_threshold is set but this source has no ratings; set it to null"
        )
    passes = RATING_OPERATORS[op](interactions["rating"], threshold).fillna(False).to_numpy(dtype=bool)
    return interactions[passes].reset_index(drop=True)


def k_core(interactions: pd.DataFrame, user_k: int, item_k: int) -> tuple[pd.DataFrame, int]:
    """Iteratively drop users with fewer than ``user_k`` and items with fewer than ``item_k`` events until
    nothing changes (a fixpoint: every remaining user and item meets its threshold).

    Returns:
        The filtered interactions and the number of passes, the last of which removed nothing.
    """
    kept = interactions
    passes = 0
    while True:
        passes += 1
        user_counts = kept["user_id"].map(kept["user_id"].value_counts())
        item_counts = kept["item_id"].map(kept["item_id"].value_counts())
        keep = (user_counts >= user_k) & (item_counts >= item_k)
        if keep.all():
            return kept.reset_index(drop=True), passes
        kept = kept[keep.to_numpy()]
