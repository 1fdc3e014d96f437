"""Text cleaning, duplicate resolution, rating filter and the iterative k-core."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.pipelines.ingest_amazon import cleaning


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Argan Oil &#9733;LIMITED SALE&#9733;", "Argan Oil ★LIMITED SALE★"),
        ('<span class="a-size-medium a-color-secondary"', ""),  # genuine 2018 Magazine title: markup only
        ("<b>Bold</b>\n  and   <i>italic</i>", "Bold and italic"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        (None, ""),
        (3.5, ""),
    ],
)
def test_clean_text(raw, clean):
    assert cleaning.clean_text(raw) == clean


def test_first_description_takes_first_non_empty_entry():
    assert cleaning.first_description(["", "  ", "<br>", "Real <b>text</b>", "later"]) == "Real text"
    assert cleaning.first_description("A string") == "A string"
    assert cleaning.first_description([]) == ""


def test_duplicate_items_keep_first_complete_row():
    items = pd.DataFrame(
        {
            "item_id": ["a", "a", "a", "b", "b", "c"],
            "title": ["", "A title", "A second", "B", "", ""],
            "description": ["desc", "", "complete", "", "", ""],
        }
    )
    kept, removed = cleaning.resolve_duplicate_items(items)
    assert removed == 3
    assert kept.to_dict("records") == [
        {"item_id": "a", "title": "A second", "description": "complete"},
        {"item_id": "b", "title": "B", "description": ""},
        {"item_id": "c", "title": "", "description": ""},
    ]


def test_title_policy_drop_and_placeholder():
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", ""], "description": ["", ""]})
    dropped, n = cleaning.apply_title_policy(items, "drop", "Item {item_id}")
    assert n == 1 and dropped["item_id"].tolist() == ["a"]
    filled, n = cleaning.apply_title_policy(items, "placeholder", "Item {item_id}")
    assert n == 1 and filled["title"].tolist() == ["A", "Item b"]
    with pytest.raises(ConfigError, match="missing_title_policy must be one of"):
        cleaning.apply_title_policy(items, "keep", "")


def test_rating_filter_operators():
    events = pd.DataFrame(
        {"user_id": list("abc"), "item_id": list("xyz"), "rating": pd.array([3, 4, 5], "Float32")}
    )
    assert cleaning.filter_by_rating(events, 4, ">=")["user_id"].tolist() == ["b", "c"]
    assert cleaning.filter_by_rating(events, 4, ">")["user_id"].tolist() == ["c"]
    assert len(cleaning.filter_by_rating(events, None, ">=")) == 3
    with pytest.raises(ConfigError, match="rating_operator must be one of"):
        cleaning.filter_by_rating(events, 4, "==")
    no_ratings = events.assign(rating=pd.array([None] * 3, "Float32"))
    with pytest.raises(ConfigError, match="has no ratings"):
        cleaning.filter_by_rating(no_ratings, 4, ">=")


def test_k_core_needs_more_than_one_pass():
    # Item z has 1 event; dropping it leaves user c with 1 event, below k=2. One pass would keep c.
    events = pd.DataFrame(
        {"user_id": ["a", "a", "b", "b", "c", "c"], "item_id": ["x", "y", "x", "y", "x", "z"]}
    )
    kept, passes = cleaning.k_core(events, user_k=2, item_k=2)
    assert passes == 3  # drop (c, z); then c is below k, drop (c, x); then nothing changes
    assert sorted(kept["user_id"].unique()) == ["a", "b"]
    # With item_k=3, y (2 events) goes in pass 1, then every user is below 2: the core is empty.
    kept, passes = cleaning.k_core(events, user_k=2, item_k=3)
    assert kept.empty and passes == 3


def _naive_k_core(events: pd.DataFrame, user_k: int, item_k: int) -> set[tuple[str, str]]:
    """Reference: remove one violating node at a time until none is left."""
    edges = list(zip(events["user_id"], events["item_id"], strict=True))
    while True:
        users = pd.Series([u for u, _ in edges]).value_counts()
        items = pd.Series([i for _, i in edges]).value_counts()
        low_users = set(users[users < user_k].index)
        low_items = set(items[items < item_k].index)
        if not low_users and not low_items:
            return set(edges)
        victim_user = min(low_users) if low_users else None
        edges = (
            [(u, i) for u, i in edges if u != victim_user]
            if victim_user is not None
            else [(u, i) for u, i in edges if i != min(low_items)]
        )


@pytest.mark.parametrize("seed", range(5))
def test_k_core_is_the_fixpoint(seed):
    rng = np.random.default_rng(seed)
    events = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.zipf(1.6, 600) % 60],
            "item_id": [f"i{i}" for i in rng.zipf(1.4, 600) % 80],
        }
    ).drop_duplicates()
    kept, _ = cleaning.k_core(events, user_k=3, item_k=4)
    assert (kept["user_id"].value_counts() >= 3).all()
    assert (kept["item_id"].value_counts() >= 4).all()
    # The k-core is unique, whatever the removal order: it equals one-node-at-a-time removal.
    assert set(zip(kept["user_id"], kept["item_id"], strict=True)) == _naive_k_core(events, 3, 4)
