"""The raw source kinds that ``ingest_amazon`` accepts, and which files each one needs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from allmrec_pipeline.errors import ConfigError

from . import readers
from .badlines import BadLineLog

Files = dict[str, list[str]]
Reader = Callable[[Files, BadLineLog], tuple[pd.DataFrame, pd.DataFrame]]


@dataclass(frozen=True)
class SourceKind:
    """A raw format: the file roles it needs, how to read them, and whether it has real timestamps."""

    roles: tuple[str, ...]
    read: Reader
    real_timestamps: bool
    doc: str


def _concat_read(paths: list[str], read_one: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([read_one(path) for path in paths], ignore_index=True)


def _read_amazon2018(files: Files, log: BadLineLog):
    interactions = _concat_read(
        files["reviews"], lambda p: readers.read_reviews(p, readers.AMAZON_2018_REVIEWS, log)
    )
    items = _concat_read(files["meta"], lambda p: readers.read_meta_lines(p, "asin", log, json.loads))
    return interactions, items


def _read_amazon2014(files: Files, log: BadLineLog):
    interactions = _concat_read(
        files["reviews"], lambda p: readers.read_reviews(p, readers.AMAZON_2018_REVIEWS, log)
    )
    items = _concat_read(
        files["meta"], lambda p: readers.read_meta_lines(p, "asin", log, readers._parse_python_literal)
    )
    return interactions, items


def _read_2023_meta(path: str, log: BadLineLog) -> pd.DataFrame:
    if readers._is_json_lines(path):
        return readers.read_meta_lines(path, "parent_asin", log, json.loads)
    return readers.read_items_table(path, "parent_asin", log)


def _read_amazon2023(files: Files, log: BadLineLog):
    interactions = _concat_read(
        files["reviews"], lambda p: readers.read_reviews(p, readers.AMAZON_2023_REVIEWS, log)
    )
    items = _concat_read(files["meta"], lambda p: _read_2023_meta(p, log))
    return interactions, items


def _read_sequence_file(files: Files, log: BadLineLog):
    interactions = _concat_read(files["sequences"], lambda p: readers.read_sequence_file(p, log))
    items = _concat_read(files["items"], lambda p: readers.read_items_tsv(p, log))
    return interactions, items


def _read_tables(files: Files, log: BadLineLog):
    interactions = _concat_read(
        files["interactions"], lambda p: readers.read_reviews(p, readers.CANONICAL_TABLE, log)
    )
    items = _concat_read(files["items"], lambda p: readers.read_items_table(p, "item_id", log))
    return interactions, items


def _read_recbole(files: Files, log: BadLineLog):
    interactions = _concat_read(files["interactions"], lambda p: readers.read_atomic_interactions(p, log))
    items = _concat_read(files["items"], lambda p: readers.read_atomic_items(p, log))
    return interactions, items


SOURCE_KINDS: dict[str, SourceKind] = {
    "amazon2018": SourceKind(
        ("reviews", "meta"),
        _read_amazon2018,
        True,
        "<Cat>_5.json(.gz) reviews + meta_<Cat>.json(.gz), JSON lines",
    ),
    "amazon2014": SourceKind(
        ("reviews", "meta"),
        _read_amazon2014,
        True,
        "reviews_<Cat>_5.json.gz + meta_<Cat>.json.gz (Python literals)",
    ),
    "amazon2023": SourceKind(
        ("reviews", "meta"),
        _read_amazon2023,
        True,
        "<Cat>.jsonl reviews (or the benchmark <Cat>.{train,valid,test}.csv splits) + meta (.jsonl or .csv)",
    ),
    "sequence_file": SourceKind(
        ("sequences", "items"), _read_sequence_file, False, "user_sequence.txt (user then items) + items TSV"
    ),
    "tables": SourceKind(
        ("interactions", "items"), _read_tables, True, "your own interactions + items tables, CSV or Parquet"
    ),
    "recbole": SourceKind(
        ("interactions", "items"),
        _read_recbole,
        True,
        "RecBole atomic files: <name>.inter (user_id, item_id, timestamp, rating) + <name>.item (item_id, title)",
    ),
}


def resolve_source_kind(kind: str, files: Files, key: str = "ingest.source.kind") -> SourceKind:
    """Look up ``kind`` and check that ``files`` has every role it needs; fail naming the key otherwise."""
    if kind not in SOURCE_KINDS:
        accepted = ", ".join(f"'{name}' ({spec.doc})" for name, spec in SOURCE_KINDS.items())
        raise ConfigError(f"Unknown source kind '{kind}' in parameter '{key}'. Accepted kinds: {accepted}")
    spec = SOURCE_KINDS[kind]
    missing = [role for role in spec.roles if not files.get(role)]
    if missing:
        raise ConfigError(
            f"Source kind '{kind}' needs file roles {list(spec.roles)} in the catalog entry 'raw_source' "
            f"(key 'files'); missing: {missing}. Configured roles: {sorted(files)}"
        )
    return spec
