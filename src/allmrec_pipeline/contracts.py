"""The canonical tables passed between pipelines, and their checks at each boundary.

A contract lists the required columns and their dtypes. ``enforce`` casts compatible frames and fails,
naming the table and column, when a column is missing or cannot be cast. Extra columns pass through.
"""

from __future__ import annotations

import pandas as pd

from allmrec_pipeline.errors import DataError

# table -> {column: pandas dtype}
CONTRACTS: dict[str, dict[str, str]] = {
    # One event per row. timestamp: unix seconds, or the position in the user's sequence when the source
    # has no timestamps (the ingest report says which). rating: null when the source has none.
    "interactions": {"user_id": "str", "item_id": "str", "timestamp": "int64", "rating": "Float32"},
    # One row per item that has interactions; text is cleaned (no HTML, single spaces).
    "items": {"item_id": "str", "title": "str", "description": "str"},
}
# optional columns: cast when present, never required. items.category: the item's category labels joined by
# "|" ("" when it has none), filled where the source has them (Amazon meta, a `category` or `genres` column,
# RecBole's genre field); what the generate_preferences pipeline asks the LLMs about.
OPTIONAL: dict[str, dict[str, str]] = {"items": {"category": "str"}}
CATEGORY_SEPARATOR = "|"


def enforce(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Cast ``frame`` to the contract of ``table`` (required columns first), or raise ``DataError``."""
    contract = CONTRACTS[table]
    missing = [column for column in contract if column not in frame.columns]
    if missing:
        raise DataError(f"table '{table}' lacks required column(s) {missing}; has {list(frame.columns)}")
    out = frame.copy()
    optional = {c: d for c, d in OPTIONAL.get(table, {}).items() if c in out.columns}
    for column, dtype in {**contract, **optional}.items():
        try:
            out[column] = out[column].astype(dtype)
        except (TypeError, ValueError) as exc:
            raise DataError(f"table '{table}': column '{column}' cannot be cast to {dtype}: {exc}") from exc
    extras = [column for column in out.columns if column not in contract]
    return out[[*contract, *extras]].reset_index(drop=True)


def empty(table: str) -> pd.DataFrame:
    """An empty frame with the contract's columns and dtypes."""
    return enforce(pd.DataFrame({column: [] for column in CONTRACTS[table]}), table)
