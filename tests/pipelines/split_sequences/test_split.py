"""split_sequences on the real Beauty slice: determinism, leak-freedom, candidates, scenarios, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog
from scipy import stats

from allmrec_pipeline.errors import ConfigError, DataError
from allmrec_pipeline.pipelines.ingest_amazon.nodes import clean_items, read_raw_source
from allmrec_pipeline.pipelines.split_sequences import nodes, splitting
from tests.conftest import FIXTURES, SPLIT_PARAMS, split_catalog

SPLIT = SPLIT_PARAMS


def _run(beauty, split=SPLIT, evaluate=None, cross_enabled=True, seed=7, cross=None) -> DataCatalog:
    return split_catalog(beauty, split, evaluate, cross_enabled, seed, cross)


def _parquet_bytes(frame: pd.DataFrame, tmp_path, name: str) -> bytes:
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path)
    return path.read_bytes()


def test_same_seed_gives_byte_identical_parquet(beauty, tmp_path):
    first, second = _run(beauty), _run(beauty)
    for name in (
        "item_index",
        "user_index",
        "sequences",
        "train_sequences",
        "eval_candidates",
        "item_popularity",
    ):
        assert _parquet_bytes(first.load(name), tmp_path, f"a_{name}") == _parquet_bytes(
            second.load(name), tmp_path, f"b_{name}"
        ), name
    other_seed = _run(beauty, seed=8)
    assert (
        not first.load("eval_candidates")["candidates"]
        .map(tuple)
        .equals(other_seed.load("eval_candidates")["candidates"].map(tuple))
    )


def test_no_held_out_event_reaches_training(beauty):
    catalog = _run(beauty)
    sequences = catalog.load("sequences").set_index("user_idx")["items"]
    train = catalog.load("train_sequences").set_index("user_idx")["items"]
    candidates = catalog.load("eval_candidates")
    cold_users = set(catalog.load("cold_user_sequences")["user_idx"])
    assert len(cold_users) == 30
    assert not cold_users & set(train.index)  # cold users are out of every training table
    for user, full in sequences.items():
        if user in cold_users:
            continue
        if len(full) >= 3:  # the valid and test events are the last two: training stops before them
            assert list(train[user]) == list(full[:-2])
        else:
            assert list(train[user]) == list(full)
    test = candidates[(candidates["scenario"] == "overall") & (candidates["split"] == "test")]
    for user, target, history in zip(test["user_idx"], test["target_item_idx"], test["history"], strict=True):
        assert target == sequences[user][-1]
        assert list(history) == list(sequences[user][:-1][-50:])
    # The cross-domain rows use their own tables; none of their users' events is in source training.
    assert catalog.load("cross_domain_eval_candidates")["scenario"].unique().tolist() == ["cross_domain"]


def test_negatives_never_in_user_history_and_distinct(beauty):
    catalog = _run(beauty)
    sequences = catalog.load("sequences").set_index("user_idx")["items"]
    for row in catalog.load("eval_candidates").itertuples():
        candidates = list(row.candidates)
        assert len(candidates) == 20 == len(set(candidates))
        assert candidates.count(row.target_item_idx) == 1
        negatives = set(candidates) - {row.target_item_idx}
        assert not negatives & set(sequences[row.user_idx].tolist())  # includes valid, test, cold-user tail
        assert 0 not in candidates


def test_target_position_is_uniform(beauty):
    candidates = _run(beauty)["eval_candidates"].load()
    positions = [
        list(c).index(t) for c, t in zip(candidates["candidates"], candidates["target_item_idx"], strict=True)
    ]
    counts = np.bincount(positions, minlength=20)
    assert len(positions) > 600
    _, p_value = stats.chisquare(counts)
    assert p_value > 0.001, counts


def test_scenarios_and_cap(beauty):
    catalog = _run(beauty, evaluate={"max_users": 50})
    candidates = catalog.load("eval_candidates")
    popularity = catalog.load("item_popularity").set_index("item_idx")["group"]
    counts = candidates.groupby(["scenario", "split"]).size().to_dict()
    assert counts[("overall", "test")] == counts[("overall", "valid")] == 50
    assert counts[("cold_user", "test")] == 30
    for scenario, group in (("cold_item", "cold"), ("warm_item", "warm")):
        for split in ("valid", "test"):
            rows = candidates[(candidates["scenario"] == scenario) & (candidates["split"] == split)]
            assert len(rows) == 50
            assert (rows["target_item_idx"].map(popularity) == group).all()
    report = catalog.load("split_report")
    assert report["candidates"]["rows_before_cap"]["overall.test"] == 270  # 300 users less 30 cold
    assert catalog.load("split_metrics")["candidates.rows.overall.test"] == 50


def test_item_scenarios_are_the_overall_rows_of_their_popularity_group_in_each_split(beauty):
    """``cold_item`` / ``warm_item``: every ``overall`` row (valid and test alike) whose target is in the group,
    with the very same candidates; the validation twins are what weights are chosen on, never the test rows."""
    catalog = _run(beauty, evaluate={"max_users": None})
    candidates = catalog.load("eval_candidates")
    group = catalog.load("item_popularity").set_index("item_idx")["group"]

    def keyed(rows: pd.DataFrame) -> set:
        return {(r.user_idx, r.target_item_idx, tuple(r.candidates)) for r in rows.itertuples()}

    for split in ("valid", "test"):
        overall = candidates[(candidates["scenario"] == "overall") & (candidates["split"] == split)]
        for scenario, name in (("cold_item", "cold"), ("warm_item", "warm")):
            rows = candidates[(candidates["scenario"] == scenario) & (candidates["split"] == split)]
            expected = overall[overall["target_item_idx"].map(group) == name]
            assert len(expected) > 0 and keyed(rows) == keyed(expected), (scenario, split)


def test_cold_users_are_truncated_to_their_first_three(beauty):
    catalog = _run(beauty)
    cold = catalog.load("cold_user_sequences").set_index("user_idx")["items"]
    rows = catalog.load("eval_candidates").query("scenario == 'cold_user'")
    assert len(rows) == 30
    for user, target, history in zip(rows["user_idx"], rows["target_item_idx"], rows["history"], strict=True):
        assert list(history) == list(cold[user][:2]) and target == cold[user][2]
    assert (
        catalog.load("split_report")["users"]["cold_users"]["rule"] == "first 3 interactions of sampled users"
    )


def test_cold_users_prefer_users_with_exactly_three():
    sequences = pd.DataFrame(
        {"user_idx": np.arange(1, 7), "items": [np.arange(n) + 1 for n in (3, 5, 3, 4, 3, 6)]}
    )
    _, held_out, report = splitting.select_cold_users(sequences, 3, seed=0)
    assert sorted(held_out["user_idx"]) == [1, 3, 5]
    assert report["rule"] == "users with exactly 3 interactions"


def test_train_users_limit_keeps_a_seeded_subset(beauty):
    limited = _run(beauty, split={**SPLIT, "train_users_limit": 16})
    full = _run(beauty)
    train = limited.load("train_sequences")
    assert len(train) == 16
    assert set(train["user_idx"]) <= set(full.load("train_sequences")["user_idx"])
    assert train.equals(_run(beauty, split={**SPLIT, "train_users_limit": 16}).load("train_sequences"))
    # Evaluation still uses the normal test users.
    pd.testing.assert_frame_equal(limited.load("eval_candidates"), full.load("eval_candidates"))
    with pytest.raises(ConfigError, match="train_users_limit must be in 1..270"):
        _run(beauty, split={**SPLIT, "train_users_limit": 10_000})


def test_popularity_groups_on_a_hand_made_example():
    # Items 1..10 with training counts 10, 9, ..., 1 (55 interactions).
    train = pd.DataFrame({"user_idx": [1], "items": [np.repeat(np.arange(1, 11), np.arange(10, 0, -1))]})
    by_rank = splitting.item_popularity(train, 10, "rank", 0.35)
    assert by_rank["count"].tolist() == list(range(10, 0, -1))
    # rank: ceil(0.35 * 10) = 4 items at each end.
    assert by_rank["group"].tolist() == ["warm"] * 4 + ["middle"] * 2 + ["cold"] * 4
    by_mass = splitting.item_popularity(train, 10, "mass", 0.35)
    # mass: warm = items until 35% of 55 (19.25) interactions is reached: 10 + 9 = 19 < 19.25, so item 3 too.
    # cold from the bottom: 1+2+3+4+5 = 15, +6 = 21 crosses 19.25, so items 10..5 (6 items) are cold.
    assert by_mass["group"].tolist() == ["warm"] * 3 + ["middle"] + ["cold"] * 6
    with pytest.raises(ConfigError, match="popularity.rule must be one of"):
        splitting.item_popularity(train, 10, "median", 0.35)


def test_bad_input_is_never_silent(beauty):
    interactions, items = beauty
    with pytest.raises(DataError, match="'interactions' is empty"):
        nodes.index_interactions(interactions.head(0), items)
    with pytest.raises(
        DataError, match=r"1 interaction\(s\) with 1 item id\(s\) missing from the items table"
    ):
        nodes.index_interactions(
            interactions, items[items["item_id"] != interactions["item_id"].iloc[0]].iloc[:]
        )
    # A user with one event is train-only, and counted.
    one_event = pd.concat(
        [
            interactions,
            pd.DataFrame(
                {
                    "user_id": ["solo"],
                    "item_id": [interactions["item_id"].iloc[5]],
                    "timestamp": [0],
                    "rating": pd.array([None], "Float32"),
                }
            ),
        ],
        ignore_index=True,
    )
    catalog = _run((one_event, items))
    assert catalog.load("split_report")["users"]["train_only_users"] == 1
    # Out-of-order timestamps are re-sorted, stably, and counted.
    shuffled = interactions.copy()
    shuffled.loc[[0, 1], "timestamp"] = shuffled.loc[[1, 0], "timestamp"].to_numpy()
    _, _, sequences, report = nodes.index_interactions(shuffled, items)
    assert report["users_reordered"] == 1
    first_user = sequences.iloc[0]
    assert list(first_user["timestamps"]) == sorted(first_user["timestamps"])


def test_nothing_of_the_cross_domain_set_enters_source_training(beauty):
    # A genuinely different second dataset (ml-100k slice): on, off, or replaced, source tables are unchanged.
    files = {
        "interactions": [str(FIXTURES / "tables/interactions.csv")],
        "items": [str(FIXTURES / "tables/items.csv")],
    }
    movies, raw_movie_items, _ = read_raw_source(files, {"kind": "tables"})
    movie_items, _ = clean_items(raw_movie_items, {})
    with_cross = _run(beauty, cross=(movies, movie_items))
    without = _run(beauty, cross_enabled=False)
    for name in ("train_sequences", "eval_candidates", "item_popularity", "item_index", "sequences"):
        pd.testing.assert_frame_equal(with_cross.load(name), without.load(name))
    cross_rows = with_cross.load("cross_domain_eval_candidates")
    cross_sequences = with_cross.load("cross_domain_sequences").set_index("user_idx")["items"]
    assert len(cross_rows) == 80 and set(cross_rows["scenario"]) == {"cross_domain"}
    for user, target in zip(cross_rows["user_idx"], cross_rows["target_item_idx"], strict=True):
        assert target == cross_sequences[user][-1]  # the held-out cross-domain event is each user's last
    n_movies = len(with_cross.load("cross_domain_item_index"))
    assert max(max(c) for c in cross_rows["candidates"]) <= n_movies  # candidates in its own item space


def test_cross_domain_switch(beauty):
    catalog = _run(beauty, cross_enabled=False)
    assert catalog.load("cross_domain_eval_candidates").empty
    assert catalog.load("split_report")["cross_domain"] == {"enabled": False}
