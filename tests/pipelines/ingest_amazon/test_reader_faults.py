"""Faults that used to surface as a raw library error or a silently wrong value: each is now a counted, skipped
line (with its file and line) or a DataError naming the file."""

from __future__ import annotations

import json

import pytest

from allmrec_pipeline.errors import DataError
from allmrec_pipeline.pipelines.ingest_amazon import readers
from allmrec_pipeline.pipelines.ingest_amazon.badlines import BadLineLog, ValueRanges

HEADER = "user_id,item_id,timestamp,rating\n"
GOOD = [f"u{i},i{i % 3},{1000 + i},5\n" for i in range(8)]


def _csv(tmp_path, rows: list[str], body: bytes | None = None):
    path = tmp_path / "interactions.csv"
    if body is not None:
        path.write_bytes(body)
    else:
        path.write_text(HEADER + "".join(rows))
    return str(path)


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("seq.txt", readers.read_sequence_file),
        ("items.tsv", readers.read_items_tsv),
        ("reviews.csv", lambda p, log: readers.read_table_reviews(p, readers.CANONICAL_TABLE, log)),
        ("items.csv", lambda p, log: readers.read_items_table(p, "item_id", log)),
        ("reviews.json", lambda p, log: readers.read_json_reviews(p, readers.AMAZON_2018_REVIEWS, log)),
        ("meta.json", lambda p, log: readers.read_meta_lines(p, "asin", log)),
    ],
)
def test_a_zero_byte_file_is_a_data_error_naming_it(tmp_path, name, read):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(DataError, match=rf"{path}: the file is empty \(0 bytes\)"):
        read(str(path), BadLineLog())


@pytest.mark.parametrize(
    ("value", "kept"),
    [("inf", False), ("99999999999999999999999", False), ("1005.7", False), ("-5", False), ("1005", True)],
)
def test_timestamps_that_are_not_whole_non_negative_int64_are_bad_lines(tmp_path, value, kept):
    path = _csv(tmp_path, [*GOOD[:3], f"ux,i1,{value},4\n", *GOOD[3:]])
    log = BadLineLog()
    frame = readers.read_table_reviews(path, readers.CANONICAL_TABLE, log)
    assert len(frame) == len(GOOD) + kept
    assert (frame["timestamp"] >= 0).all()
    if not kept:
        assert log.to_report()["by_reason"] == {"bad_timestamp": 1}
        assert log.to_report()["examples"]["bad_timestamp"] == [f"{path}:5"]


def test_a_negative_timestamp_in_clean_json_leaves_the_fast_path_and_is_counted(tmp_path):
    record = {"reviewerID": "A1", "asin": "B1", "unixReviewTime": 1400000000, "overall": 5.0}
    lines = [json.dumps({**record, "reviewerID": f"A{i}"}) for i in range(5)]
    lines.insert(2, json.dumps({**record, "unixReviewTime": -5}))
    path = tmp_path / "reviews.json"
    path.write_text("\n".join(lines) + "\n")
    log = BadLineLog()
    frame = readers.read_json_reviews(str(path), readers.AMAZON_2018_REVIEWS, log)
    assert len(frame) == 5 and (frame["timestamp"] > 0).all()
    assert log.to_report()["examples"] == {"bad_timestamp": [f"{path}:3"]}


def test_a_csv_row_with_extra_fields_is_counted_with_its_line_and_the_rest_kept(tmp_path):
    path = _csv(tmp_path, [*GOOD[:4], "u9,i1,1009,5,extra,fields,here\n", *GOOD[4:]])
    log = BadLineLog()
    frame = readers.read_table_reviews(path, readers.CANONICAL_TABLE, log)
    assert len(frame) == len(GOOD)
    assert log.to_report()["by_reason"] == {"wrong_field_count": 1}
    assert log.to_report()["examples"]["wrong_field_count"] == [f"{path}:6"]
    assert log.to_report()["lines_read"][path] == len(GOOD) + 1


def test_rows_after_a_skipped_csv_row_keep_their_own_line_numbers(tmp_path):
    path = _csv(tmp_path, [GOOD[0], "a,b,c,d,e\n", GOOD[1], "u5,,1005,5\n", *GOOD[2:]])
    log = BadLineLog()
    readers.read_table_reviews(path, readers.CANONICAL_TABLE, log)
    assert log.to_report()["examples"] == {
        "missing_field": [f"{path}:5"],  # the 4th data line, after the skipped 3rd
        "wrong_field_count": [f"{path}:3"],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ((HEADER + 'u1,"i1,1000,5\n' + "".join(GOOD)).encode(), "unreadable CSV"),
        ((HEADER + "u1,i\xe91,1000,5\n").encode("latin-1") + "".join(GOOD).encode(), "not UTF-8"),
    ],
)
def test_a_csv_that_cannot_be_read_on_is_a_data_error_naming_it(tmp_path, body, message):
    path = _csv(tmp_path, [], body=body)
    with pytest.raises(DataError, match=rf"{path}: {message}"):
        readers.read_table_reviews(path, readers.CANONICAL_TABLE, BadLineLog())


def test_invalid_utf8_in_a_sequence_file_is_a_bad_line_with_its_byte_offset(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_bytes(b"u1 i1 i2\nu2 i\xff3 i4\nu3 i5 i6\n")
    log = BadLineLog()
    frame = readers.read_sequence_file(str(path), log)
    assert sorted(set(frame["user_id"])) == ["u1", "u3"]
    assert log.to_report()["by_reason"] == {"bad_encoding": 1}
    assert log.first_bad[str(path)] == f"{path}:2 (bad_encoding): invalid UTF-8 at byte 13"
    assert log.to_report()["lines_read"][str(path)] == 3


def test_items_tsv_invalid_utf8_and_empty_ids_are_bad_lines(tmp_path):
    path = tmp_path / "items.tsv"
    path.write_bytes(b"asin\ttitle\nB1\tLipstick\nB\xfe2\tCream\n\tNo id\nB4\tSoap\n")
    log = BadLineLog()
    items = readers.read_items_tsv(str(path), log)
    assert list(items["item_id"]) == ["B1", "B4"]
    assert log.to_report()["by_reason"] == {"bad_encoding": 1, "missing_field": 1}
    assert log.to_report()["examples"]["missing_field"] == [f"{path}:4"]


def test_an_enabled_source_that_reads_no_interaction_fails_instead_of_saving_an_empty_table(tmp_path):
    from allmrec_pipeline.pipelines.ingest_amazon.nodes import read_raw_source

    interactions = tmp_path / "interactions.csv"
    interactions.write_text(HEADER)  # the header alone
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\ni1,Soap\n")
    files = {"interactions": [str(interactions)], "items": [str(items)]}
    with pytest.raises(DataError, match=r"no interaction was read from .*interactions\.csv"):
        read_raw_source(files, {"kind": "tables", "enabled": True, "max_bad_fraction": 0.01})


def _events(n_known: int, n_unknown: int):
    import pandas as pd

    rows = [(f"u{i}", "i1" if i < n_known else f"gone{i}", i, None) for i in range(n_known + n_unknown)]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame({"item_id": ["i1"], "title": ["Soap"], "description": [""]})
    return interactions, items


FILTERS = {"rating_threshold": None, "rating_operator": ">=", "user_k": 1, "item_k": 1}


def test_interactions_of_unknown_items_fail_above_the_share_and_warn_below(caplog):
    from allmrec_pipeline.pipelines.ingest_amazon.nodes import filter_interactions

    interactions, items = _events(80, 20)
    with pytest.raises(DataError, match=r"20 of 100 interactions \(20\.0%\) name an item .*'gone80'"):
        filter_interactions(interactions, items, {**FILTERS, "max_unknown_item_fraction": 0.05})
    kept, _, report = filter_interactions(interactions, items, {**FILTERS, "max_unknown_item_fraction": 0.25})
    assert len(kept) == 80 and report["interactions_dropped_for_items_without_text"] == 20
    assert "20 of 100 interactions (20.0%)" in caplog.text


def test_too_many_unknown_items_name_their_cause_and_its_fix():
    """Genuine 2018 Magazine_Subscriptions meta: every title is the markup ``<span class="a-size-medium ...``, so
    clean_items drops them all and almost every interaction names a dropped item."""
    import pandas as pd

    from allmrec_pipeline.pipelines.ingest_amazon.nodes import clean_items, filter_interactions

    interactions, _ = _events(20, 80)
    raw_items = pd.DataFrame(
        {
            "item_id": ["i1", *(f"gone{i}" for i in range(20, 100))],
            "title": ["Soap", *['<span class="a-size-medium a-color-secondary"'] * 80],
            "description": [""] * 81,
        }
    )
    items, items_report = clean_items(raw_items, {"missing_title_policy": "drop"})
    assert items_report["missing_titles"] == 80
    limits = {**FILTERS, "max_unknown_item_fraction": 0.05}
    with pytest.raises(DataError, match=r"dropped 80 items whose title is empty or markup only.*placeholder"):
        filter_interactions(interactions, items, limits, items_report)
    with pytest.raises(DataError, match=r"No title was dropped as empty: the items file lacks these items"):
        filter_interactions(interactions, items, limits, {**items_report, "missing_titles": 0})
    kept_items, kept_report = clean_items(
        raw_items, {"missing_title_policy": "placeholder", "placeholder_title": "Item {item_id}"}
    )
    kept, _, _ = filter_interactions(interactions, kept_items, limits, kept_report)
    assert len(kept) == 100


def test_filters_that_leave_nothing_fail_naming_the_step():
    from allmrec_pipeline.pipelines.ingest_amazon.nodes import filter_interactions

    interactions, items = _events(10, 0)
    with pytest.raises(DataError, match=r"no interaction is left after the step 'k_core'"):
        filter_interactions(interactions, items, {**FILTERS, "user_k": 5, "max_unknown_item_fraction": 0.05})


@pytest.mark.parametrize("title", ["\u200b", " \u200b\u200d ", "\ufeff", "\u00ad\u2060"])
def test_an_invisible_only_title_counts_as_missing(title):
    import pandas as pd

    from allmrec_pipeline.pipelines.ingest_amazon.cleaning import apply_title_policy, clean_item_text

    raw = pd.DataFrame({"item_id": ["i1", "i2"], "title": [title, "Soap\u200b Bar"], "description": ["", ""]})
    items, missing = apply_title_policy(clean_item_text(raw), "drop", "Item {item_id}")
    assert missing == 1 and list(items["title"]) == ["Soap Bar"]


RANGES = ValueRanges(timestamp=(631152000, 4102444800), rating=(0, 5))
IN_RANGE = [f"u{i},i{i % 3},{1400000000 + i},{1 + i % 5}\n" for i in range(8)]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("ux,i1,1e3,4\n", "timestamp_out_of_range"),  # 1970: a plausible-looking typo
        ("ux,i1,1000,4\n", "timestamp_out_of_range"),
        ("ux,i1,9999999999,4\n", "timestamp_out_of_range"),  # the year 2286
        ("ux,i1,1400000000,-3\n", "rating_out_of_range"),
        ("ux,i1,1400000000,7.5\n", "rating_out_of_range"),
    ],
)
def test_values_outside_the_configured_ranges_are_bad_lines_by_reason(tmp_path, row, reason):
    path = _csv(tmp_path, [*IN_RANGE[:3], row, *IN_RANGE[3:]])
    log = BadLineLog(ranges=RANGES)
    frame = readers.read_table_reviews(path, readers.CANONICAL_TABLE, log)
    assert len(frame) == len(IN_RANGE)
    assert log.to_report()["by_reason"] == {reason: 1}
    assert log.to_report()["examples"][reason] == [f"{path}:5"]
    assert "ingest.source." in log.first_bad[path]  # names the key that sets the range
    # without ranges the same row is kept: the check is the configured one, not a hidden constant
    unbounded = BadLineLog()
    assert len(readers.read_table_reviews(path, readers.CANONICAL_TABLE, unbounded)) == len(IN_RANGE) + 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"unixReviewTime": 1000}, "timestamp_out_of_range"), ({"overall": -3.0}, "rating_out_of_range")],
)
def test_out_of_range_values_in_clean_json_leave_the_fast_path_and_are_counted(tmp_path, change, reason):
    record = {"reviewerID": "A1", "asin": "B1", "unixReviewTime": 1400000000, "overall": 5.0}
    lines = [json.dumps({**record, "reviewerID": f"A{i}"}) for i in range(5)]
    lines.insert(2, json.dumps({**record, **change}))
    path = tmp_path / "reviews.json"
    path.write_text("\n".join(lines) + "\n")
    log = BadLineLog(ranges=RANGES)
    frame = readers.read_json_reviews(str(path), readers.AMAZON_2018_REVIEWS, log)
    assert len(frame) == 5
    assert log.to_report()["examples"] == {reason: [f"{path}:3"]}


def test_millisecond_timestamps_are_checked_in_seconds(tmp_path):
    record = {"user_id": "A1", "parent_asin": "B1", "timestamp": 1400000000123, "rating": 5.0}
    lines = [json.dumps({**record, "user_id": f"A{i}"}) for i in range(4)]
    lines.append(json.dumps({**record, "timestamp": 1400000000}))  # seconds where milliseconds are due: 1970
    path = tmp_path / "reviews.jsonl"
    path.write_text("\n".join(lines) + "\n")
    log = BadLineLog(ranges=RANGES)
    frame = readers.read_json_reviews(str(path), readers.AMAZON_2023_REVIEWS, log)
    assert len(frame) == 4 and (frame["timestamp"] == 1400000000).all()
    assert log.to_report()["examples"] == {"timestamp_out_of_range": [f"{path}:5"]}


def test_the_node_reads_the_ranges_from_ingest_source():
    from allmrec_pipeline.pipelines.ingest_amazon.nodes import value_ranges

    ranges = value_ranges({"timestamp_range": [1, 2], "rating_range": None})
    assert ranges.timestamp == (1.0, 2.0) and ranges.rating is None


def test_a_quoted_cell_spanning_lines_keeps_later_line_numbers_and_an_id_with_a_break_is_bad(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text('item_id,title\nI1,"a title\non two lines"\n"I2\nI3",swallowed\nI4,four\nI5,\n')
    log = BadLineLog()
    items = readers.read_items_table(str(path), "item_id", log)
    assert items["item_id"].tolist() == ["I1", "I4", "I5"]  # I5's missing title is the cleaning step's
    assert log.to_report()["examples"] == {"line_break_in_id": [f"{path}:4"]}
    interactions = tmp_path / "interactions.csv"
    interactions.write_text(HEADER + '"u\n1",i1,1005,4\nu2,i2,1006,4\nu3,,1007,4\n')
    log = BadLineLog()
    frame = readers.read_table_reviews(str(interactions), readers.CANONICAL_TABLE, log)
    assert frame["user_id"].tolist() == ["u2"]
    assert log.to_report()["examples"] == {
        "line_break_in_id": [f"{interactions}:2"],
        "missing_field": [f"{interactions}:5"],  # line 5: the first row spans lines 2 and 3
    }
