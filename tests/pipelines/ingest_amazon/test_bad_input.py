"""Bad lines are counted by reason with file:line examples, and fail the run only above max_bad_fraction."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from allmrec_pipeline.errors import DataError
from allmrec_pipeline.pipelines.ingest_amazon import readers
from allmrec_pipeline.pipelines.ingest_amazon.badlines import BadLineLog, ValueRanges
from allmrec_pipeline.pipelines.ingest_amazon.nodes import read_raw_source


@pytest.fixture
def genuine_reviews(fixtures) -> list[str]:
    with gzip.open(fixtures / "amazon2018/Magazine_Subscriptions_5.json.gz", "rt") as handle:
        return handle.read().splitlines()


def _with_bad_lines(genuine_reviews: list[str]) -> tuple[list[str], dict[int, str]]:
    """The genuine lines with one bad line of each class injected; returns lines and {line_no: reason}."""
    lines = list(genuine_reviews)
    record = json.loads(lines[10])
    no_rating = {k: v for k, v in record.items() if k != "overall"}
    bad = {
        5: ("malformed_json", '{"overall": 5.0, "reviewerID": "A1", "asin": '),
        50: ("missing_field", json.dumps(no_rating)),
        120: ("non_numeric_rating", json.dumps({**record, "overall": "five stars"})),
        200: ("bad_timestamp", json.dumps({**record, "unixReviewTime": "02 26, 2014"})),
        300: ("missing_field", json.dumps({**record, "reviewerID": ""})),
    }
    for line_no in sorted(bad):
        lines.insert(line_no - 1, bad[line_no][1])
    return lines, {line_no: reason for line_no, (reason, _) in bad.items()}


@pytest.mark.parametrize("chunk_bytes", [readers.CHUNK_BYTES, 4096])
def test_each_bad_class_is_counted_with_its_line(tmp_path, genuine_reviews, chunk_bytes):
    lines, expected = _with_bad_lines(genuine_reviews)
    path = tmp_path / "reviews.json"
    path.write_text("\n".join(lines) + "\n")
    log = BadLineLog()
    interactions = readers.read_json_reviews(
        str(path), readers.AMAZON_2018_REVIEWS, log, chunk_bytes=chunk_bytes
    )
    assert len(interactions) == len(genuine_reviews)
    assert log.to_report()["by_reason"] == {
        "bad_timestamp": 1,
        "malformed_json": 1,
        "missing_field": 2,
        "non_numeric_rating": 1,
    }
    examples = log.to_report()["examples"]
    for line_no, reason in expected.items():
        assert f"{path}:{line_no}" in examples[reason]
    assert log.to_report()["lines_read"] == {str(path): len(lines)}


def test_blank_lines_are_counted_in_a_file_with_bad_lines(tmp_path, genuine_reviews):
    path = tmp_path / "reviews.json"
    path.write_text(
        "\n".join(genuine_reviews[:20]) + "\n\n" + "\n".join(genuine_reviews[20:40]) + "\n{oops\n"
    )
    log = BadLineLog()
    interactions = readers.read_json_reviews(str(path), readers.AMAZON_2018_REVIEWS, log)
    assert len(interactions) == 40
    assert log.to_report()["by_reason"] == {"blank_line": 1, "malformed_json": 1}
    assert log.to_report()["examples"]["blank_line"] == [f"{path}:21"]


def test_too_many_bad_lines_fail_naming_file_count_and_first_line(tmp_path, genuine_reviews, fixtures):
    lines, _ = _with_bad_lines(genuine_reviews[:100])  # 5 bad of 105: 4.8% > 1%
    path = tmp_path / "reviews.json.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    files = {
        "reviews": [str(path)],
        "meta": [str(fixtures / "amazon2018/meta_Magazine_Subscriptions.json.gz")],
    }
    with pytest.raises(DataError) as error:
        read_raw_source(files, {"kind": "amazon2018", "max_bad_fraction": 0.01})
    message = str(error.value)
    assert str(path) in message
    assert "5 of 105 lines are bad" in message
    assert f"first bad line: {path}:5 (malformed_json)" in message
    # Under a looser threshold the same file reads, and the report keeps the counts.
    _, _, report = read_raw_source(files, {"kind": "amazon2018", "max_bad_fraction": 0.1})
    assert report["bad_lines"]["total"] == 5


def test_clean_file_takes_the_streaming_path_and_matches_the_exact_path(tmp_path, genuine_reviews):
    path = tmp_path / "reviews.json"
    path.write_text("\n".join(genuine_reviews) + "\n")
    assert readers._read_json_clean(str(path), readers.AMAZON_2018_REVIEWS, ValueRanges()) is not None
    fast = readers.read_json_reviews(str(path), readers.AMAZON_2018_REVIEWS, BadLineLog())
    path.write_text("\n".join(genuine_reviews) + "\nnot json\n")
    assert readers._read_json_clean(str(path), readers.AMAZON_2018_REVIEWS, ValueRanges()) is None
    exact = readers.read_json_reviews(str(path), readers.AMAZON_2018_REVIEWS, BadLineLog(), chunk_bytes=8192)
    pd.testing.assert_frame_equal(fast, exact)


def test_bad_rows_in_a_csv_table_are_counted(tmp_path):
    path = tmp_path / "interactions.csv"
    path.write_text(
        "user_id,item_id,rating,timestamp\n"
        "u1,i1,5,100\n"
        "u1,,4,101\n"  # missing item_id
        "u2,i1,great,102\n"  # non-numeric rating
        "u2,i2,3,yesterday\n"  # bad timestamp
        "u3,i2,,103\n"  # no rating: allowed in generic tables
    )
    log = BadLineLog()
    interactions = readers.read_table_reviews(str(path), readers.CANONICAL_TABLE, log)
    assert interactions["user_id"].tolist() == ["u1", "u3"]
    assert log.to_report()["examples"] == {
        "bad_timestamp": [f"{path}:5"],
        "missing_field": [f"{path}:3"],
        "non_numeric_rating": [f"{path}:4"],
    }


def test_table_without_a_required_column_names_it(tmp_path):
    path = tmp_path / "interactions.csv"
    path.write_text("user,item_id,timestamp\nu1,i1,1\n")
    with pytest.raises(DataError, match=r"interactions.csv: required column 'user_id' is absent"):
        readers.read_table_reviews(str(path), readers.CANONICAL_TABLE, BadLineLog())


def test_sequence_file_bad_lines(tmp_path):
    seq = tmp_path / "seq.txt"
    seq.write_text("u1 a b c\nu2\n\nu3 a b\n")
    log = BadLineLog()
    interactions = readers.read_sequence_file(str(seq), log)
    assert interactions["user_id"].tolist() == ["u1"] * 3 + ["u3"] * 2
    assert log.to_report()["examples"] == {"blank_line": [f"{seq}:3"], "empty_sequence": [f"{seq}:2"]}


def test_items_tsv_wrong_field_count_and_bad_header(tmp_path):
    items = tmp_path / "items.tsv"
    items.write_text('asin\ttitle\nA1\tA "quoted" title\nA2\tx\textra\n')
    log = BadLineLog()
    frame = readers.read_items_tsv(str(items), log)
    assert frame["title"].tolist() == ['A "quoted" title']
    assert log.to_report()["examples"] == {"wrong_field_count": [f"{items}:3"]}
    items.write_text("id\tname\n")
    with pytest.raises(DataError, match=r"items.tsv:1: expected a header with 'asin'"):
        readers.read_items_tsv(str(items), BadLineLog())
    items.write_text("B01\tA title\n")  # no header line: the error says which line to add
    with pytest.raises(
        DataError, match=r"got \['B01', 'A title'\]: the file's first line names .* 'asin<TAB>title'"
    ):
        readers.read_items_tsv(str(items), BadLineLog())
