"""Streaming readers, one per raw source kind, that emit raw interaction and item frames.

Every reader returns ``(interactions, items)``:

- ``interactions(user_id: str, item_id: str, timestamp: int64 seconds, rating: Float32 nullable)``;
- ``items(item_id: str, title: str (raw), description: list[str] | str | None (raw), ...)``, plus ``category``
  (``list[str]``, the item's raw category labels) where the source has categories.

Text is cleaned later (``cleaning.py``). Bad lines go to a :class:`BadLineLog` and never stop a read by
themselves. Review files are read in byte chunks: a chunk is parsed by Arrow's JSON reader when it is clean,
and line by line (to locate and count its bad lines) only when Arrow rejects it.
"""

from __future__ import annotations

import ast
import io
import json
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from allmrec_pipeline.errors import DataError
from allmrec_pipeline.progress import progress_bar

from .badlines import BadLineLog, ValueRanges

CHUNK_BYTES = 16 * 1024 * 1024
CSV_CHUNK_ROWS = 200_000
CANONICAL_SCHEMA = pa.schema(
    [("user_id", pa.string()), ("item_id", pa.string()), ("timestamp", pa.int64()), ("rating", pa.float32())]
)


@dataclass(frozen=True)
class ReviewFields:
    """Where the canonical interaction columns live in one source format."""

    user_id: str
    item_id: str
    timestamp: str
    rating: str | None  # None: the format has no rating
    timestamp_divisor: int = 1  # 1000 for millisecond timestamps
    rating_required: bool = True


AMAZON_2018_REVIEWS = ReviewFields("reviewerID", "asin", "unixReviewTime", "overall")
AMAZON_2023_REVIEWS = ReviewFields("user_id", "parent_asin", "timestamp", "rating", timestamp_divisor=1000)
CANONICAL_TABLE = ReviewFields("user_id", "item_id", "timestamp", "rating", rating_required=False)


def _open(path: str, mode: str = "rb"):
    """Open a local or remote file; ``.gz`` and other compressions are inferred from the name."""
    return fsspec.open(path, mode, compression="infer")


def _require_content(path: str) -> None:
    """A 0-byte file is a ``DataError`` naming it (an empty table would otherwise become the newest version)."""
    handle = fsspec.open(path, "rb")
    if handle.fs.size(handle.path) == 0:
        raise DataError(f"{path}: the file is empty (0 bytes)")


def _decoded_lines(path: str, log: BadLineLog) -> Iterator[tuple[int, str]]:
    """``(line_no, text)`` of each line decoded as UTF-8 (line breaks stripped); a line that does not decode is
    counted as ``bad_encoding`` with the byte offset of the first bad byte, and skipped."""
    _require_content(path)
    offset = 0
    with _open(path) as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                yield line_no, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                log.add_lines(path, 1)
                log.record("bad_encoding", path, line_no, f"invalid UTF-8 at byte {offset + exc.start}")
            offset += len(raw)


def _is_json_lines(path: str) -> bool:
    name = path.lower().removesuffix(".gz").removesuffix(".bz2")
    return name.endswith((".json", ".jsonl"))


def _is_csv(path: str) -> bool:
    return path.lower().removesuffix(".gz").endswith(".csv")


# ---------------------------------------------------------------------------------------------------------
# Reviews / interactions
# ---------------------------------------------------------------------------------------------------------


def _line_chunks(path: str, chunk_bytes: int) -> Iterator[tuple[bytes, int]]:
    """Yield ``(chunk, n_lines)`` pieces of a file, each ending at a line break."""
    with _open(path) as handle:
        carry = b""
        while True:
            block = handle.read(chunk_bytes)
            if not block:
                if carry:
                    yield carry, carry.count(b"\n") + (not carry.endswith(b"\n"))
                return
            data = carry + block
            cut = data.rfind(b"\n")
            if cut == -1:
                carry = data
                continue
            carry = data[cut + 1 :]
            yield data[: cut + 1], data.count(b"\n", 0, cut + 1)


def _arrow_schema(fields: ReviewFields) -> pa.Schema:
    columns = [(fields.user_id, pa.string()), (fields.item_id, pa.string()), (fields.timestamp, pa.int64())]
    if fields.rating:
        columns.append((fields.rating, pa.float64()))
    return pa.schema(columns)


def _parse_json_chunk_fast(chunk: bytes, n_lines: int, schema: pa.Schema) -> pa.Table | None:
    """Parse a clean chunk with Arrow; ``None`` when Arrow rejects it or skips lines (blank lines)."""
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pa_json.read_json(io.BytesIO(chunk), parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != n_lines:
        return None
    return table


def _canonical_from_arrow(
    table: pa.Table,
    first_line: int,
    fields: ReviewFields,
    path: str,
    log: BadLineLog | None,
    ranges: ValueRanges,
) -> pa.Table:
    """Canonical columns from an Arrow-parsed chunk (already typed); only missing values can be bad here.

    Stays in Arrow compute: the common case, a chunk with no bad row, costs a few vectorised passes.
    With ``log=None`` a missing value raises ``_NotClean`` instead of being counted.
    """
    bad = pa.array(np.zeros(table.num_rows, dtype=bool))
    required = [fields.user_id, fields.item_id, fields.timestamp]
    if fields.rating and fields.rating_required:
        required.append(fields.rating)
    for name in required:
        column = table[name]
        missing = pc.is_null(column)
        if pa.types.is_string(column.type):
            # Empty (from the offsets, no scan) or whitespace only (a scan, no allocation).
            missing = pc.or_(missing, pc.or_(pc.equal(pc.binary_length(column), 0), pc.utf8_is_space(column)))
        missing = pc.fill_null(missing, True)
        newly = pc.and_(missing, pc.invert(bad))
        if pc.any(newly).as_py():
            if log is None:
                raise _NotClean
            line_numbers = np.flatnonzero(newly.to_numpy(zero_copy_only=False)) + first_line
            for line_no in line_numbers:
                log.record("missing_field", path, int(line_no), f"field '{name}' is missing or empty")
            bad = pc.or_(bad, missing)
    for reason, outside, detail in _value_checks(table, fields, ranges):
        outside = pc.fill_null(outside, False)
        newly = pc.and_(outside, pc.invert(bad))
        if pc.any(newly).as_py():
            if log is None:
                raise _NotClean
            for line_no in np.flatnonzero(newly.to_numpy(zero_copy_only=False)) + first_line:
                log.record(reason, path, int(line_no), detail)
            bad = pc.or_(bad, outside)
    if pc.any(bad).as_py():
        table = table.filter(pc.invert(bad))
    rating = (
        pc.cast(table[fields.rating], pa.float32())
        if fields.rating
        else pa.nulls(table.num_rows, pa.float32())
    )
    timestamp = table[fields.timestamp]
    if fields.timestamp_divisor != 1:
        timestamp = pc.divide(timestamp, fields.timestamp_divisor)
    return pa.table(
        {
            "user_id": table[fields.user_id],
            "item_id": table[fields.item_id],
            "timestamp": timestamp,
            "rating": rating,
        },
        schema=CANONICAL_SCHEMA,
    )


def _value_checks(table: pa.Table, fields: ReviewFields, ranges: ValueRanges) -> list[tuple[str, Any, str]]:
    """``(reason, outside, detail)`` of every value check of an Arrow-typed chunk (``outside`` may hold nulls)."""
    timestamp = table[fields.timestamp]
    checks = [("bad_timestamp", pc.less(timestamp, 0), f"'{fields.timestamp}' is negative")]
    if ranges.timestamp is not None:
        low, high = (bound * fields.timestamp_divisor for bound in ranges.timestamp)
        outside = pc.or_(pc.less(timestamp, low), pc.greater(timestamp, high))
        checks.append(
            ("timestamp_out_of_range", outside, _range_detail(fields.timestamp, "timestamp", ranges))
        )
    if fields.rating and ranges.rating is not None:
        low, high = ranges.rating
        rating = table[fields.rating]
        outside = pc.or_(pc.less(rating, low), pc.greater(rating, high))
        checks.append(("rating_out_of_range", outside, _range_detail(fields.rating, "rating", ranges)))
    return checks


def _range_detail(field_name: str, kind: str, ranges: ValueRanges) -> str:
    low, high = getattr(ranges, kind)
    unit = " seconds" if kind == "timestamp" else ""
    return f"'{field_name}' is outside {ranges.source}.{kind}_range [{low:g}, {high:g}]{unit}"


def _parse_json_chunk_slow(
    chunk: bytes, first_line: int, fields: ReviewFields, path: str, log: BadLineLog
) -> tuple[pd.DataFrame, np.ndarray]:
    """Parse a chunk line by line, counting malformed lines; returns raw values and their line numbers."""
    names = [f for f in (fields.user_id, fields.item_id, fields.timestamp, fields.rating) if f]
    rows, line_numbers = [], []
    n_breaks = chunk.count(b"\n")
    for offset, raw in enumerate(chunk.split(b"\n")):
        line_no = first_line + offset
        if not raw.strip():
            if offset < n_breaks:  # not the empty piece after the final newline
                log.record("blank_line", path, line_no)
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            log.record("malformed_json", path, line_no, str(exc))
            continue
        if not isinstance(record, dict):
            log.record("malformed_json", path, line_no, "not a JSON object")
            continue
        rows.append([record.get(name) for name in names])
        line_numbers.append(line_no)
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    return frame, np.asarray(line_numbers, dtype=np.int64)


def _blank(values: pd.Series) -> np.ndarray:
    """Missing: null, or an empty / whitespace-only string."""
    as_text = values.astype("string")
    return (values.isna() | as_text.str.strip().eq("")).to_numpy(dtype=bool)


def _has_line_break(values: pd.Series) -> np.ndarray:
    """A value holding a line break (only a quoted CSV cell can): never part of an id."""
    return values.astype("string").str.contains("[\r\n]", regex=True).fillna(False).to_numpy(dtype=bool)


def _record_rows(
    mask: np.ndarray, reason: str, line_numbers: np.ndarray, path: str, log: BadLineLog, detail: str
):
    for line_no in line_numbers[mask]:
        log.record(reason, path, int(line_no), detail)


def _validate_interactions(
    frame: pd.DataFrame, line_numbers: np.ndarray, fields: ReviewFields, path: str, log: BadLineLog
) -> pa.Table:
    """Map a raw frame to canonical interactions, counting rows with missing or non-numeric fields."""
    bad = np.zeros(len(frame), dtype=bool)
    required = [fields.user_id, fields.item_id, fields.timestamp]
    if fields.rating and fields.rating_required:
        required.append(fields.rating)
    for name in required:
        if name not in frame.columns:
            raise DataError(f"{path}: required column '{name}' is absent (columns: {list(frame.columns)})")
        missing = _blank(frame[name]) & ~bad
        _record_rows(missing, "missing_field", line_numbers, path, log, f"field '{name}' is missing or empty")
        bad |= missing
    for name in (fields.user_id, fields.item_id):
        broken = _has_line_break(frame[name]) & ~bad
        _record_rows(broken, "line_break_in_id", line_numbers, path, log, f"'{name}' holds a line break")
        bad |= broken

    timestamp = pd.to_numeric(frame[fields.timestamp], errors="coerce")
    unparsable = timestamp.isna().to_numpy() & ~bad
    _record_rows(
        unparsable, "bad_timestamp", line_numbers, path, log, f"'{fields.timestamp}' is not a number"
    )
    bad |= unparsable
    values = timestamp.to_numpy(dtype=np.float64, na_value=0.0)
    with np.errstate(invalid="ignore"):
        # not a whole, non-negative number that fits int64: inf, 1e23, 1005.7, -5 would be stored wrong
        invalid = ~np.isfinite(values) | (values < 0) | (values >= 2.0**63) | (values != np.floor(values))
    invalid &= ~bad
    _record_rows(
        invalid,
        "bad_timestamp",
        line_numbers,
        path,
        log,
        f"'{fields.timestamp}' is not a whole number >= 0 below 2^63",
    )
    bad |= invalid
    ranges = log.ranges
    if ranges.timestamp is not None:
        seconds = np.floor(values / fields.timestamp_divisor)
        outside = ((seconds < ranges.timestamp[0]) | (seconds > ranges.timestamp[1])) & ~bad
        detail = _range_detail(fields.timestamp, "timestamp", ranges)
        _record_rows(outside, "timestamp_out_of_range", line_numbers, path, log, detail)
        bad |= outside

    if fields.rating and fields.rating in frame.columns:
        rating = pd.to_numeric(frame[fields.rating], errors="coerce")
        non_numeric = rating.isna().to_numpy() & frame[fields.rating].notna().to_numpy() & ~bad
        _record_rows(
            non_numeric, "non_numeric_rating", line_numbers, path, log, f"'{fields.rating}' is not numeric"
        )
        bad |= non_numeric
        if ranges.rating is not None:
            numbers = rating.to_numpy(dtype=np.float64, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                outside = ((numbers < ranges.rating[0]) | (numbers > ranges.rating[1])) & ~bad
            _record_rows(
                outside,
                "rating_out_of_range",
                line_numbers,
                path,
                log,
                _range_detail(fields.rating, "rating", ranges),
            )
            bad |= outside
    else:
        rating = pd.Series(np.nan, index=frame.index)

    keep = ~bad
    return pa.table(
        {
            "user_id": frame[fields.user_id][keep].astype(str).to_numpy(dtype=object),
            "item_id": frame[fields.item_id][keep].astype(str).to_numpy(dtype=object),
            "timestamp": (timestamp[keep].astype(np.float64) // fields.timestamp_divisor)
            .astype(np.int64)
            .to_numpy(),
            "rating": pa.array(rating[keep].to_numpy(dtype=np.float64), type=pa.float32(), from_pandas=True),
        },
        schema=CANONICAL_SCHEMA,
    )


def read_json_reviews(
    path: str, fields: ReviewFields, log: BadLineLog, chunk_bytes: int = CHUNK_BYTES
) -> pd.DataFrame:
    """Stream a JSON-lines review file (optionally compressed) into canonical interactions.

    A clean file (every line parses, no required field missing) goes through Arrow's multi-threaded
    streaming reader in one pass; Arrow skips empty lines, which carry no data. Any other file is re-read
    chunk by chunk, and the chunks Arrow rejects line by line, so that every bad (or blank) line is counted
    with its line number.
    """
    _require_content(path)
    table = _read_json_clean(path, fields, log.ranges)
    if table is not None:
        log.add_lines(path, table.num_rows)
        return _to_pandas([table])
    tables, next_line = [], 1
    schema = _arrow_schema(fields)
    progress = progress_bar(desc=f"re-reading {path} (bad lines)", unit="lines")
    for chunk, n_lines in _line_chunks(path, chunk_bytes):
        progress.update(n_lines)
        table = _parse_json_chunk_fast(chunk, n_lines, schema)
        if table is not None:
            tables.append(_canonical_from_arrow(table, next_line, fields, path, log, log.ranges))
        else:
            frame, line_numbers = _parse_json_chunk_slow(chunk, next_line, fields, path, log)
            tables.append(_validate_interactions(frame, line_numbers, fields, path, log))
        log.add_lines(path, n_lines)
        next_line += n_lines
    progress.close()
    return _to_pandas(tables)


class _NotClean(Exception):
    """A batch has a missing required field: locate it with the line-exact reader instead."""


def _read_json_clean(path: str, fields: ReviewFields, ranges: ValueRanges) -> pa.Table | None:
    """The whole file through Arrow's streaming reader, or ``None`` at the first bad line or missing field."""
    options = pa_json.ParseOptions(explicit_schema=_arrow_schema(fields), unexpected_field_behavior="ignore")
    read_options = pa_json.ReadOptions(block_size=CHUNK_BYTES)
    try:
        with (
            _arrow_input(path) as source,
            progress_bar(desc=f"reading {path}", unit="lines") as progress,
        ):
            batches = []
            for batch in pa_json.open_json(source, read_options=read_options, parse_options=options):
                batch_table = pa.Table.from_batches([batch])
                batches.append(_canonical_from_arrow(batch_table, 1, fields, path, None, ranges))
                progress.update(batch.num_rows)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, _NotClean):
        return None
    return pa.concat_tables(batches) if batches else CANONICAL_SCHEMA.empty_table()


def _arrow_input(path: str):
    """A native Arrow stream for local files (no GIL on reads; compression detected from the name)."""
    if "://" not in path or path.startswith("file://"):
        return pa.input_stream(path.removeprefix("file://"), compression="detect")
    return _open(path)


def _table_chunks(path: str, log: BadLineLog) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """``(chunk, line_numbers)`` of a CSV or Parquet table (Parquet: row numbers from 1).

    A CSV row with more fields than the header is counted as ``wrong_field_count`` with its line and skipped;
    a fault that leaves the rest of the file unreadable (a quote never closed, bytes that are not UTF-8) is a
    ``DataError`` naming the file. A row's line number is that of its first line (a quoted cell may span
    lines).
    """
    _require_content(path)
    if path.lower().endswith(".parquet"):
        first = 1
        with _open(path) as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=CSV_CHUNK_ROWS):
                yield batch.to_pandas().astype(object), np.arange(first, first + batch.num_rows)
                first += batch.num_rows
        return
    if not _is_csv(path):
        raise DataError(f"{path}: unsupported table format (expected .csv, .csv.gz or .parquet)")
    next_line, skipped = 2, set()
    with _open(path) as handle:
        chunks = _csv_chunks(path, handle)
        while True:
            # the capture spans the parse alone: warnings of the caller between chunks are not swallowed
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                chunk = next(chunks, None)
            for warning in caught:
                found = re.findall(r"Skipping line (\d+): ([^\n]*)", str(warning.message))
                if not found:
                    warnings.warn(warning.message, warning.category, stacklevel=1)
                for line_no, detail in found:
                    skipped.add(int(line_no))
                    log.record("wrong_field_count", path, int(line_no), detail)
            if chunk is None:
                break
            # a quoted cell may hold line breaks: its row then spans as many more lines
            spans = 1 + sum(chunk[c].fillna("").str.count("\n").to_numpy() for c in chunk.columns)
            numbers = []
            while len(numbers) < len(chunk):
                if next_line not in skipped:
                    numbers.append(next_line)
                    next_line += int(spans[len(numbers) - 1]) - 1
                next_line += 1
            log.add_lines(path, len(chunk))
            yield chunk, np.asarray(numbers, dtype=np.int64)
    log.add_lines(path, len(skipped))


def _csv_chunks(path: str, handle) -> Iterator[pd.DataFrame]:
    """pandas' chunks of a CSV (rows with extra fields skipped with a ``ParserWarning`` each); a fault that
    stops the parser is a ``DataError`` naming the file."""
    try:
        yield from pd.read_csv(
            handle,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            chunksize=CSV_CHUNK_ROWS,
            encoding="utf-8",
            on_bad_lines="warn",
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no header line (the file holds only blank space)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: unreadable CSV: {str(exc).strip().splitlines()[0]}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc.reason}): re-encode the file as UTF-8") from None


def read_table_reviews(path: str, fields: ReviewFields, log: BadLineLog) -> pd.DataFrame:
    """Read a CSV or Parquet interactions table in chunks into canonical interactions."""
    tables = [
        _validate_interactions(chunk.reset_index(drop=True), line_numbers, fields, path, log)
        for chunk, line_numbers in _table_chunks(path, log)
    ]
    return _to_pandas(tables)


def read_reviews(path: str, fields: ReviewFields, log: BadLineLog) -> pd.DataFrame:
    """Dispatch on the file name: JSON lines, or a CSV / Parquet table."""
    if _is_json_lines(path):
        return read_json_reviews(path, fields, log)
    return read_table_reviews(path, fields, log)


def read_sequence_file(path: str, log: BadLineLog) -> pd.DataFrame:
    """Read ``user item item ...`` lines; the position in a line becomes an increasing timestamp."""
    users, items, positions = [], [], []
    for line_no, line in _decoded_lines(path, log):
        tokens = line.split()
        log.add_lines(path, 1)
        if not tokens:
            log.record("blank_line", path, line_no)
            continue
        if len(tokens) == 1:
            log.record("empty_sequence", path, line_no, f"user '{tokens[0]}' has no items")
            continue
        n = len(tokens) - 1
        users.extend([tokens[0]] * n)
        items.extend(tokens[1:])
        positions.extend(range(n))
    table = pa.table(
        {
            "user_id": users,
            "item_id": items,
            "timestamp": np.asarray(positions, dtype=np.int64),
            "rating": pa.nulls(len(users), pa.float32()),
        },
        schema=CANONICAL_SCHEMA,
    )
    return _to_pandas([table])


def _to_pandas(tables: list[pa.Table]) -> pd.DataFrame:
    table = pa.concat_tables(tables) if tables else CANONICAL_SCHEMA.empty_table()
    return table.to_pandas(types_mapper={pa.float32(): pd.Float32Dtype(), pa.string(): pd.StringDtype()}.get)


# ---------------------------------------------------------------------------------------------------------
# Item metadata
# ---------------------------------------------------------------------------------------------------------

ITEM_COLUMNS = ["item_id", "title", "description"]


def hierarchy_labels(value: object) -> list[str]:
    """An Amazon item's category labels from its category path(s): the level below the store's root (the path's
    second entry, e.g. ``Makeup`` of ``[Beauty, Makeup, Face, Foundation]``; the only entry of a one-entry path),
    one per path, first-seen order. Takes a path (2018 ``category``, 2023 ``categories``), a list of paths (2014
    ``categories``) or a CSV cell holding either as a Python literal; anything else gives no label."""
    if isinstance(value, str):
        value = _maybe_list_literal(value.strip())
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list | tuple) or not value:
        return []
    paths = value if all(isinstance(p, list | tuple | np.ndarray) for p in value) else [value]
    labels = []
    for path in paths:
        entries = [str(e) for e in list(path) if isinstance(e, str) and e.strip()]
        if entries:
            labels.append(entries[1] if len(entries) > 1 else entries[0])
    return list(dict.fromkeys(labels))


def flat_labels(value: object) -> list[str]:
    """Labels of a flat cell: split on ``|`` when it holds one (``Animation|Comedy``), else on white space
    (RecBole's and ml-100k's ``Animation Children's Comedy``); a null cell gives none."""
    if not isinstance(value, str) or not value.strip():
        return []
    parts = value.split("|") if "|" in value else value.split()
    return [p.strip() for p in parts if p.strip()]


def _parse_python_literal(raw: str) -> object:
    """Amazon 2014 meta lines are Python dict literals: parse them safely, never with ``eval``."""
    return ast.literal_eval(raw)


def read_meta_lines(
    path: str, id_field: str, log: BadLineLog, parse: Callable[[str], object] = json.loads
) -> pd.DataFrame:
    """Read one JSON (or Python-literal) object per line, keeping id, title and description."""
    rows = []
    for line_no, line in _decoded_lines(path, log):
        log.add_lines(path, 1)
        if not line.strip():
            log.record("blank_line", path, line_no)
            continue
        try:
            record = parse(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            log.record("malformed_json", path, line_no, str(exc)[:200])
            continue
        if not isinstance(record, dict):
            log.record("malformed_json", path, line_no, "not an object")
            continue
        item_id = record.get(id_field)
        if item_id is None or not str(item_id).strip():
            log.record("missing_field", path, line_no, f"field '{id_field}' is missing or empty")
            continue
        category = record.get("category", record.get("categories"))
        rows.append(
            (str(item_id), record.get("title"), record.get("description"), hierarchy_labels(category))
        )
    return pd.DataFrame(rows, columns=[*ITEM_COLUMNS, "category"], dtype=object)


def read_items_table(path: str, id_field: str, log: BadLineLog) -> pd.DataFrame:
    """Read an items CSV / Parquet table (``<id_field>``, ``title``, optional ``description`` and extras).

    A ``description`` cell that holds a Python list literal (the 2023 benchmark CSV) is parsed into a list. The
    category labels come from a ``category`` column (labels separated by ``|``), else a ``genres`` column
    (``|`` or white space), else a ``categories`` column (Amazon category paths, as ``hierarchy_labels`` reads
    them); a table with none of them has no ``category``.
    """
    frames, numbers = [], []
    for chunk, line_numbers in _table_chunks(path, log):
        numbers.append(line_numbers)
        for required in (id_field, "title"):
            if required not in chunk.columns:
                raise DataError(
                    f"{path}: required column '{required}' is absent (columns: {list(chunk.columns)})"
                )
        chunk = chunk.rename(columns={id_field: "item_id"})
        chunk = chunk.drop(columns=[c for c in chunk.columns if c == "" or c.startswith("Unnamed:")])
        if "description" not in chunk.columns:
            chunk["description"] = None
        chunk["description"] = chunk["description"].map(_maybe_list_literal)
        if "category" in chunk.columns:
            chunk["category"] = chunk["category"].map(lambda v: flat_labels(v) if "|" in str(v) else [v])
        elif "genres" in chunk.columns:
            chunk["category"] = chunk["genres"].map(flat_labels)
        elif "categories" in chunk.columns:
            chunk["category"] = chunk["categories"].map(hierarchy_labels)
        frames.append(chunk)
    items = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ITEM_COLUMNS)
    missing = _blank(items["item_id"])
    line_numbers = np.concatenate(numbers) if numbers else np.zeros(0, dtype=np.int64)
    for row in np.flatnonzero(missing):
        log.record("missing_field", path, int(line_numbers[row]), "field 'item_id' is missing or empty")
    broken = _has_line_break(items["item_id"]) & ~missing
    _record_rows(broken, "line_break_in_id", line_numbers, path, log, f"'{id_field}' holds a line break")
    return items[~(missing | broken)].reset_index(drop=True)


def _maybe_list_literal(value: object) -> object:
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def read_items_tsv(path: str, log: BadLineLog) -> pd.DataFrame:
    """Read the shipped ``asin<TAB>title[<TAB>extra...]`` items file (unquoted; titles may contain quotes)."""
    lines = _decoded_lines(path, log)
    first = next(lines, None)
    header = first[1].split("\t") if first is not None and first[0] == 1 else None
    if not header or "title" not in header or not {"asin", "item_id"} & set(header):
        raise DataError(
            f"{path}:1: expected a header with 'asin' (or 'item_id') and 'title', got {header}: the file's first "
            "line names its tab-separated columns, e.g. 'asin<TAB>title' (add it to a file without one)"
        )
    log.add_lines(path, 1)
    key = header.index("asin" if "asin" in header else "item_id")
    rows = []
    for line_no, line in lines:  # unquoted: a tab always separates fields
        fields = line.split("\t")
        log.add_lines(path, 1)
        if len(fields) != len(header):
            log.record("wrong_field_count", path, line_no, f"{len(fields)} fields, header has {len(header)}")
            continue
        if not fields[key].strip():
            log.record("missing_field", path, line_no, f"field '{header[key]}' is empty")
            continue
        rows.append(fields)
    items = pd.DataFrame(rows, columns=["item_id" if c == "asin" else c for c in header], dtype=object)
    if "description" not in items.columns:
        items["description"] = None
    return items


# ---------------------------------------------------------------------------------------------------------
# RecBole atomic files (.inter, .item): tab-separated, a typed header (``user_id:token``, ``class:token_seq``)
# ---------------------------------------------------------------------------------------------------------

ATOMIC_TITLE_FIELDS = ("title", "movie_title", "item_title", "name")
ATOMIC_CATEGORY_FIELDS = ("genre", "genres", "class", "category", "categories")


def read_atomic(path: str, log: BadLineLog) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of a RecBole atomic file with its field names (types stripped: ``user_id:token`` is ``user_id``)
    and their line numbers; a line with another number of fields than the header is counted
    (``wrong_field_count``) and skipped."""
    lines = _decoded_lines(path, log)
    first = next(lines, None)
    if first is None or first[0] != 1 or not first[1].strip():
        raise DataError(f"{path}:1: expected RecBole's typed header (e.g. 'user_id:token<TAB>item_id:token')")
    header = [field.split(":", 1)[0] for field in first[1].split("\t")]
    log.add_lines(path, 1)
    rows, numbers = [], []
    for line_no, line in lines:
        log.add_lines(path, 1)
        if not line.strip():
            log.record("blank_line", path, line_no)
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            log.record("wrong_field_count", path, line_no, f"{len(fields)} fields, header has {len(header)}")
            continue
        rows.append(fields)
        numbers.append(line_no)
    return pd.DataFrame(rows, columns=header, dtype=object), np.asarray(numbers, dtype=np.int64)


def read_atomic_interactions(path: str, log: BadLineLog) -> pd.DataFrame:
    """A RecBole ``.inter`` file (``user_id``, ``item_id``, ``timestamp``, optional ``rating``) as canonical
    interactions."""
    frame, numbers = read_atomic(path, log)
    return _to_pandas([_validate_interactions(frame, numbers, CANONICAL_TABLE, path, log)])


def read_atomic_items(path: str, log: BadLineLog) -> pd.DataFrame:
    """A RecBole ``.item`` file as raw items: ``item_id``, the title from the first of ``ATOMIC_TITLE_FIELDS``
    it has, the category labels from the first of ``ATOMIC_CATEGORY_FIELDS`` (white-space separated tokens, as
    RecBole writes a ``token_seq``), no description."""
    frame, numbers = read_atomic(path, log)
    title = next((f for f in ATOMIC_TITLE_FIELDS if f in frame.columns), None)
    if "item_id" not in frame.columns or title is None:
        raise DataError(
            f"{path}: a RecBole .item file needs 'item_id' and a title field (one of {list(ATOMIC_TITLE_FIELDS)}); "
            f"it has {list(frame.columns)}"
        )
    missing = _blank(frame["item_id"])
    _record_rows(missing, "missing_field", numbers, path, log, "field 'item_id' is missing or empty")
    frame = frame[~missing].reset_index(drop=True)
    category = next((f for f in ATOMIC_CATEGORY_FIELDS if f in frame.columns), None)
    return pd.DataFrame(
        {
            "item_id": frame["item_id"].astype(str),
            "title": frame[title],
            "description": None,
            **({"category": frame[category].map(flat_labels)} if category else {}),
        },
        dtype=object,
    )
