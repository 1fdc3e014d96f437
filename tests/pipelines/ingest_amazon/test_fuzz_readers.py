"""Property-based tests of every reader: arbitrary bytes, and good lines mixed with arbitrary ones. The outcome
is either a table (bad lines counted and skipped, every good row kept) or a DataError naming the file; never
another exception type."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allmrec_pipeline.errors import DataError
from allmrec_pipeline.pipelines.ingest_amazon import readers
from allmrec_pipeline.pipelines.ingest_amazon.badlines import BadLineLog, ValueRanges

FUZZ = settings(
    max_examples=100, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
RANGES = ValueRanges(timestamp=(631152000, 4102444800), rating=(0, 5))


def _tables(p, log):
    return readers.read_table_reviews(p, readers.CANONICAL_TABLE, log)


READERS: dict[str, tuple[str, Callable[[str, BadLineLog], pd.DataFrame]]] = {
    "sequence_file": ("seq.txt", readers.read_sequence_file),
    "items_tsv": ("items.tsv", readers.read_items_tsv),
    "interactions_csv": ("interactions.csv", _tables),
    "items_csv": ("items.csv", lambda p, log: readers.read_items_table(p, "item_id", log)),
    "reviews_json": (
        "reviews.json",
        lambda p, log: readers.read_json_reviews(p, readers.AMAZON_2018_REVIEWS, log),
    ),
    "meta_json": ("meta.json", lambda p, log: readers.read_meta_lines(p, "asin", log)),
    "meta_python": (
        "meta.txt",
        lambda p, log: readers.read_meta_lines(p, "asin", log, readers._parse_python_literal),
    ),
}

# (header, a good line for row i, the column that identifies the row, its value for row i)
GOOD: dict[str, tuple[str | None, Callable[[int], str], str, Callable[[int], str]]] = {
    "sequence_file": (None, lambda i: f"U{i} I{i} I{i + 1}", "user_id", lambda i: f"U{i}"),
    "items_tsv": ("asin\ttitle", lambda i: f"A{i}\tTitle number {i}", "item_id", lambda i: f"A{i}"),
    "interactions_csv": (
        "user_id,item_id,timestamp,rating",
        lambda i: f"U{i},I{i},{1400000000 + i},4",
        "user_id",
        lambda i: f"U{i}",
    ),
    "items_csv": ("item_id,title", lambda i: f"I{i},Title {i}", "item_id", lambda i: f"I{i}"),
    "reviews_json": (
        None,
        lambda i: json.dumps(
            {"reviewerID": f"U{i}", "asin": f"I{i}", "unixReviewTime": 1400000000 + i, "overall": 4.0}
        ),
        "user_id",
        lambda i: f"U{i}",
    ),
    "meta_json": (
        None,
        lambda i: json.dumps({"asin": f"A{i}", "title": f"T {i}"}),
        "item_id",
        lambda i: f"A{i}",
    ),
    "meta_python": (None, lambda i: repr({"asin": f"A{i}", "title": f"T {i}"}), "item_id", lambda i: f"A{i}"),
}

# arbitrary lines: any text without a line break (quotes, tabs, commas, braces, control and non-ASCII
# characters included), and arbitrary bytes (invalid UTF-8 included)
NO_BREAK = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
    max_size=60,
)
BAD_BYTES = st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b)
JUNK = st.one_of(NO_BREAK.map(lambda s: s.encode("utf-8")), BAD_BYTES)
# in a CSV a double quote opens a cell that may span lines, so the good lines after it are that cell's text by
# the format's rules (test_reader_faults covers such a cell); the CSV mixes leave quotes out
CSV_JUNK = JUNK.map(lambda b: b.replace(b'"', b""))


def _read(kind: str, body: bytes) -> tuple[str, pd.DataFrame | DataError, BadLineLog]:
    name, read = READERS[kind]
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / name)
        Path(path).write_bytes(body)
        log = BadLineLog(ranges=RANGES)
        try:
            return path, read(path, log), log
        except DataError as error:
            return path, error, log


@pytest.mark.parametrize("kind", sorted(READERS))
@FUZZ
@given(body=st.binary(max_size=400))
def test_arbitrary_bytes_give_a_table_or_a_data_error_naming_the_file(kind, body):
    path, outcome, _ = _read(kind, body)
    if isinstance(outcome, DataError):
        assert path in str(outcome)
    else:
        assert isinstance(outcome, pd.DataFrame)


@pytest.mark.parametrize("kind", sorted(READERS))
@FUZZ
@given(data=st.data())
def test_good_lines_among_arbitrary_ones_are_all_kept_or_the_file_is_refused(kind, data):
    junk = CSV_JUNK if kind.endswith("_csv") else JUNK
    lines = data.draw(
        st.lists(st.one_of(st.integers(0, 10_000), junk), min_size=1, max_size=30), label="lines"
    )
    header, good_line, column, value = GOOD[kind]
    body = [header.encode()] if header else []
    good = []
    for line in lines:
        if isinstance(line, int):
            body.append(good_line(line).encode())
            good.append(value(line))
        else:
            body.append(line)
    path, outcome, log = _read(kind, b"\n".join(body) + b"\n")
    if isinstance(outcome, DataError):
        assert path in str(outcome)
        return
    kept = set(outcome[column].astype(str))
    assert set(good) <= kept, f"good rows lost: {sorted(set(good) - kept)}; bad lines: {log.to_report()}"
