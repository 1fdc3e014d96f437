"""The optional ``category`` column of ``items``: filled by every reader whose source has categories, cleaned, and
absent where the source has none; and the RecBole atomic kind."""

from __future__ import annotations

import gzip
import json

import pytest

from allmrec_pipeline.pipelines.ingest_amazon.nodes import clean_items, filter_interactions, read_raw_source
from allmrec_pipeline.pipelines.ingest_amazon.readers import flat_labels, hierarchy_labels
from tests.pipelines.ingest_amazon.test_sources import _files


def _items(files, kind):
    interactions, raw_items, report = read_raw_source(files, {"kind": kind})
    items, _ = clean_items(raw_items, {"missing_title_policy": "placeholder"})
    interactions, items, _ = filter_interactions(
        interactions, items, {"user_k": 1, "item_k": 1, "max_unknown_item_fraction": 0.05}
    )
    return interactions, items.set_index("item_id"), report


def test_hierarchy_labels_take_the_level_below_the_root():
    assert hierarchy_labels(["Beauty", "Makeup", "Face", "Foundation"]) == ["Makeup"]  # 2018 / 2023: one path
    assert hierarchy_labels(
        [["Beauty", "Makeup", "Face"], ["Beauty", "Skin Care"], ["Beauty", "Makeup"]]
    ) == [
        "Makeup",
        "Skin Care",
    ]  # 2014: a list of paths, each label once
    assert hierarchy_labels([["Gift Cards"]]) == ["Gift Cards"]  # a one-entry path: its only entry
    assert hierarchy_labels("[['Beauty', 'Hair Care']]") == ["Hair Care"]  # a CSV cell holding a literal
    assert hierarchy_labels([]) == [] and hierarchy_labels(None) == [] and hierarchy_labels("n/a") == []


def test_flat_labels_split_on_bars_else_white_space():
    assert flat_labels("Animation Children's Comedy") == ["Animation", "Children's", "Comedy"]
    assert flat_labels("Film-Noir|Sci-Fi") == ["Film-Noir", "Sci-Fi"]
    assert flat_labels("") == [] and flat_labels(None) == []


def test_amazon2018_meta_categories_are_cleaned_second_levels(fixtures):
    _, items, _ = _items(_files(fixtures, "amazon2018"), "amazon2018")
    meta = {}
    with gzip.open(fixtures / "amazon2018/meta_Magazine_Subscriptions.json.gz", "rt") as handle:
        for line in handle:
            record = json.loads(line)
            meta.setdefault(record["asin"], record.get("category", []))
    assert items["category"].str.len().gt(0).all()
    for asin, category in items["category"].items():
        path = meta[asin]
        assert category == path[1].replace("&amp;", "&"), asin  # HTML entities unescaped
    assert not items["category"].str.contains("&amp;").any()


def test_amazon2014_meta_categories(fixtures):
    _, items, _ = _items(_files(fixtures, "amazon2014"), "amazon2014")
    assert set(items["category"]) == {"Gift Cards"}  # [['Gift Cards', 'Gift Cards']] and the like


@pytest.mark.parametrize("kind", ["sequence_file", "amazon2023_csv"])
def test_sources_without_categories_have_no_category_column(fixtures, kind):
    _, items, _ = _items(_files(fixtures, kind), kind.removesuffix("_csv"))
    assert "category" not in items.columns


def test_tables_take_the_genres_column(fixtures):
    _, items, _ = _items(_files(fixtures, "tables"), "tables")
    assert items.loc["1", "category"] == "Animation|Children's|Comedy"  # Toy Story
    assert items["category"].dtype == items["title"].dtype and items["category"].str.len().gt(0).all()


def test_a_category_column_wins_over_genres(tmp_path, fixtures):
    (tmp_path / "items.csv").write_text(
        "item_id,title,category,genres\n1,Toy Story,Kids|Family,Animation\n2,GoldenEye,,Action\n",
        encoding="utf-8",
    )
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id,rating,timestamp\nu1,1,5,881250949\nu1,2,4,881250950\n", encoding="utf-8"
    )
    files = {"interactions": [str(tmp_path / "interactions.csv")], "items": [str(tmp_path / "items.csv")]}
    _, items, _ = _items(files, "tables")
    assert items.loc["1", "category"] == "Kids|Family" and items.loc["2", "category"] == ""


def test_recbole_atomic_files_match_the_tables_slice(fixtures):
    files = {
        "interactions": [str(fixtures / "recbole/ml-100k.inter")],
        "items": [str(fixtures / "recbole/ml-100k.item")],
    }
    interactions, items, report = _items(files, "recbole")
    assert report["raw"] == {"users": 80, "items": 1161, "interactions": 8126}
    assert report["timestamps"] == "real" and interactions["rating"].notna().all()
    table_interactions, table_items, _ = _items(_files(fixtures, "tables"), "tables")
    assert interactions.equals(table_interactions)  # the same ratings as the CSV slice of the same users
    assert items["title"].equals(table_items["title"]) and items["category"].equals(table_items["category"])


def test_recbole_bad_lines_are_counted_with_their_line(tmp_path, fixtures, caplog):
    lines = (fixtures / "recbole/ml-100k.inter").read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(3, "22\t377\n")  # a field short: line 4
    (tmp_path / "ml.inter").write_text("".join(lines), encoding="utf-8")
    files = {"interactions": [str(tmp_path / "ml.inter")], "items": [str(fixtures / "recbole/ml-100k.item")]}
    _, _, report = read_raw_source(files, {"kind": "recbole", "max_bad_fraction": 0.01})
    assert report["bad_lines"]["by_reason"] == {"wrong_field_count": 1}
    assert report["bad_lines"]["examples"]["wrong_field_count"] == [f"{tmp_path / 'ml.inter'}:4"]


def test_recbole_items_without_a_title_field_fail_naming_the_file(tmp_path, fixtures):
    (tmp_path / "ml.item").write_text("item_id:token\tyear:token\n1\t1995\n", encoding="utf-8")
    files = {"interactions": [str(fixtures / "recbole/ml-100k.inter")], "items": [str(tmp_path / "ml.item")]}
    from allmrec_pipeline.errors import DataError

    with pytest.raises(DataError, match=r"ml\.item: a RecBole \.item file needs 'item_id' and a title field"):
        read_raw_source(files, {"kind": "recbole"})
