"""Each source kind on a real fixture slice (tests/fixtures/README.md says where each slice comes from)."""

from __future__ import annotations

import pandas as pd
import pytest

from allmrec_pipeline.errors import ConfigError, DataError
from allmrec_pipeline.pipelines.ingest_amazon.nodes import clean_items, filter_interactions, read_raw_source


def _files(fixtures, kind):
    f = fixtures
    return {
        "amazon2018": {
            "reviews": [str(f / "amazon2018/Magazine_Subscriptions_5.json.gz")],
            "meta": [str(f / "amazon2018/meta_Magazine_Subscriptions.json.gz")],
        },
        "amazon2014": {
            "reviews": [str(f / "amazon2014/reviews_Gift_Cards_5.json.gz")],
            "meta": [str(f / "amazon2014/meta_Gift_Cards.json.gz")],
        },
        "amazon2023_csv": {
            "reviews": [str(f / f"amazon2023/All_Beauty.{s}.csv") for s in ("train", "valid", "test")],
            "meta": [str(f / "amazon2023/meta_All_Beauty.csv")],
        },
        "amazon2023_jsonl": {
            "reviews": [str(f / "amazon2023/All_Beauty.jsonl")],
            "meta": [str(f / "amazon2023/meta_All_Beauty.jsonl")],
        },
        "sequence_file": {
            "sequences": [str(f / "sequence_file/user_sequence.txt")],
            "items": [str(f / "sequence_file/items_asin_title.tsv")],
        },
        "tables": {
            "interactions": [str(f / "tables/interactions.csv")],
            "items": [str(f / "tables/items.csv")],
        },
    }[kind]


def _ingest(files, kind, filters=None):
    interactions, raw_items, read_report = read_raw_source(files, {"kind": kind})
    items, items_report = clean_items(raw_items, {})
    interactions, items, filter_report = filter_interactions(
        interactions, items, {"user_k": 1, "item_k": 1, "max_unknown_item_fraction": 0.05, **(filters or {})}
    )
    return interactions, items, read_report, items_report, filter_report


def _assert_contract(interactions: pd.DataFrame, items: pd.DataFrame) -> None:
    assert list(interactions.columns[:4]) == ["user_id", "item_id", "timestamp", "rating"]
    assert interactions["timestamp"].dtype == "int64"
    assert str(interactions["rating"].dtype) == "Float32"
    assert set(interactions["item_id"]) == set(items["item_id"])
    assert (items["title"].str.len() > 0).all()
    assert not items["title"].str.contains("<|&#|&amp;", regex=True).any()


def test_amazon2018_genuine_magazine_slice(fixtures, caplog):
    # most Magazine titles are markup only: their interactions go, which the default share refuses
    with pytest.raises(DataError, match=r"386 of 398 interactions \(97\.0%\) name an item that is absent"):
        _ingest(_files(fixtures, "amazon2018"), "amazon2018")
    interactions, items, read_report, items_report, _ = _ingest(
        _files(fixtures, "amazon2018"), "amazon2018", {"max_unknown_item_fraction": 1.0}
    )
    assert "386 of 398 interactions (97.0%)" in caplog.text  # allowed, and said
    _assert_contract(interactions, items)
    assert read_report["raw"] == {"users": 236, "items": 27, "interactions": 400}
    assert read_report["timestamps"] == "real"
    # The genuine meta file repeats asins, and most Magazine titles are bare '<span ...' markup.
    assert items_report["duplicate_item_rows"] == 27
    assert items_report["missing_titles"] == 24
    assert len(items) == 3
    assert interactions["rating"].notna().all()


def test_amazon2014_python_literal_meta(fixtures):
    interactions, items, read_report, items_report, _ = _ingest(_files(fixtures, "amazon2014"), "amazon2014")
    _assert_contract(interactions, items)
    assert read_report["raw"] == {"users": 224, "items": 15, "interactions": 300}
    assert items.set_index("item_id").loc["B004LLIKVU", "title"] == "Amazon eGift Card"  # whitespace stripped


def test_amazon2014_meta_is_never_evaluated(tmp_path, fixtures):
    """A meta line that is code, not a literal, is a bad line: it is never executed."""
    marker = tmp_path / "executed"
    meta = tmp_path / "meta.json"
    meta.write_text(
        "{'asin': 'A1', 'title': 'ok'}\n"
        f"__import__('pathlib').Path({str(marker)!r}).touch()\n" + "{'asin': 'A2', 'title': 'fine'}\n" * 200
    )
    files = {"reviews": _files(fixtures, "amazon2014")["reviews"], "meta": [str(meta)]}
    _, raw_items, report = read_raw_source(files, {"kind": "amazon2014"})
    assert not marker.exists()
    assert report["bad_lines"]["by_reason"] == {"malformed_json": 1}
    assert report["bad_lines"]["examples"]["malformed_json"] == [f"{meta}:2"]


@pytest.mark.parametrize("variant", ["amazon2023_csv", "amazon2023_jsonl"])
def test_amazon2023_both_layouts(fixtures, variant):
    interactions, items, read_report, _, filter_report = _ingest(_files(fixtures, variant), "amazon2023")
    _assert_contract(interactions, items)
    assert read_report["raw"]["users"] == 60
    # Millisecond timestamps become seconds.
    assert interactions["timestamp"].between(1_000_000_000, 2_000_000_000).all()
    assert filter_report["duplicate_events"] == 0
    # The review export keeps 4 repeat reviews of an item at later times, which the benchmark CSV drops.
    expected = {"amazon2023_csv": 721, "amazon2023_jsonl": 725}[variant]
    assert filter_report["final"]["interactions"] == expected


def test_sequence_file_keeps_order_as_timestamp(fixtures):
    interactions, items, read_report, _, _ = _ingest(_files(fixtures, "sequence_file"), "sequence_file")
    _assert_contract(interactions, items)
    assert read_report["raw"] == {"users": 300, "items": 2795, "interactions": 4161}
    assert read_report["timestamps"] == "synthesized from sequence order"
    first_line = (fixtures / "sequence_file/user_sequence.txt").read_text().splitlines()[0].split()
    user = interactions[interactions["user_id"] == first_line[0]]
    assert user.sort_values("timestamp")["item_id"].tolist() == first_line[1:]
    assert interactions["rating"].isna().all()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_generic_tables(tmp_path, fixtures, fmt):
    files = _files(fixtures, "tables")
    if fmt == "parquet":
        for role in ("interactions", "items"):
            path = tmp_path / f"{role}.parquet"
            pd.read_csv(files[role][0], dtype=str).to_parquet(path)
            files[role] = [str(path)]
    interactions, items, read_report, _, _ = _ingest(files, "tables")
    _assert_contract(interactions, items)
    assert read_report["raw"] == {"users": 80, "items": 1161, "interactions": 8126}
    assert set(items.columns) >= {"release_year", "genres"}  # extra item columns pass through


def test_unknown_kind_lists_accepted_kinds(fixtures):
    with pytest.raises(
        ConfigError, match="Unknown source kind 'amazon2099'.*'ingest.source.kind'.*'amazon2018'"
    ):
        read_raw_source(_files(fixtures, "tables"), {"kind": "amazon2099"})


def test_missing_role_names_the_catalog_key(fixtures):
    with pytest.raises(ConfigError, match=r"needs file roles \['reviews', 'meta'\].*missing: \['meta'\]"):
        read_raw_source({"reviews": ["x.json"]}, {"kind": "amazon2018"})


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.json.gz"
    with pytest.raises(ConfigError, match=f"not found: reviews: {missing}"):
        read_raw_source({"reviews": [str(missing)], "meta": [str(missing)]}, {"kind": "amazon2018"})


def test_disabled_source_yields_empty_contract_tables():
    interactions, items, report = read_raw_source({}, {"enabled": False, "kind": "sequence_file"})
    assert report == {"enabled": False}
    assert len(interactions) == 0 and list(interactions.columns) == [
        "user_id",
        "item_id",
        "timestamp",
        "rating",
    ]
    assert len(items) == 0
