"""The items' co-occurrence in the training sequences (``allmrec_pipeline.cooccurrence``)."""

from __future__ import annotations

import numpy as np
import pytest

from allmrec_pipeline.cooccurrence import cooccurrence_scores, cooccurrence_table


def test_pairs_count_forwards_within_the_window_backwards_at_their_weight_and_never_across_sequences():
    table = cooccurrence_table([[0, 1, 2, 3, 4], [5, 1]], n_items=5, window=2, backward=0.5)
    w = table.lookup
    assert w(1, 2) == 1.0 and w(1, 3) == 1.0  # one and two positions later
    assert w(1, 4) == 0.0  # three positions later: outside the window
    assert w(2, 1) == 0.5  # read backwards
    assert w(5, 1) == 1.0 and w(1, 5) == 0.5  # the second sequence
    assert w(4, 5) == 0.0 and w(5, 4) == 0.0  # the end of one sequence and the start of the next
    assert w(0, 1) == 0.0  # padding is no item
    # repeated pairs add up; a pair never seen and an item outside the table score 0
    again = cooccurrence_table([[1, 2], [1, 2], [2, 1]], n_items=3, window=1, backward=0.25)
    assert again.lookup(1, 2) == 2.25 and again.lookup(2, 1) == 1.5
    assert again.lookup(1, 3) == 0.0 and again.lookup(1, 99) == 0.0 and again.lookup(-1, 2) == 0.0
    # backward 0 stores no reversed pair
    forward = cooccurrence_table([[1, 2]], n_items=2, window=1, backward=0.0)
    assert len(forward.keys) == 1 and forward.lookup(2, 1) == 0.0


def test_a_candidates_score_weighs_the_latest_history_item_most():
    table = cooccurrence_table([[1, 3], [2, 4], [2, 3]], n_items=4, window=1, backward=0.0)
    histories = [[0, 1, 2], [], [2]]  # oldest first; 0 is padding
    candidates = np.array([[3, 4], [3, 4], [1, 3]])
    scores = cooccurrence_scores(table, histories, candidates, n_history=10, decay=0.5)
    # row 0: item 2 (latest, weight 1) then item 1 (weight 0.5); w(2,3)=1, w(1,3)=1, w(2,4)=1, w(1,4)=0
    np.testing.assert_allclose(scores, [[1.5, 1.0], [0.0, 0.0], [0.0, 1.0]])
    # n_history 1 reads the latest item alone
    np.testing.assert_allclose(
        cooccurrence_scores(table, histories, candidates, n_history=1, decay=0.5)[0], [1.0, 1.0]
    )


def test_a_bad_window_weight_or_item_index_says_what_is_wrong():
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        cooccurrence_table([[1, 2]], n_items=2, window=0, backward=0.5)
    with pytest.raises(ValueError, match="backward weight must be >= 0"):
        cooccurrence_table([[1, 2]], n_items=2, window=1, backward=-1.0)
    with pytest.raises(ValueError, match="item index 7, outside the item index"):
        cooccurrence_table([[1, 7]], n_items=2, window=1, backward=0.5)


def test_an_empty_history_set_builds_an_empty_table_that_scores_zero():
    table = cooccurrence_table([], n_items=3, window=2, backward=0.5)
    assert len(table.keys) == 0
    np.testing.assert_array_equal(cooccurrence_scores(table, [[1, 2]], np.array([[2, 3]]), 10, 0.7), [[0, 0]])
