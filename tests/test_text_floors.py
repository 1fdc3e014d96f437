import numpy as np
import pytest

from allmrec_pipeline import metrics, text_floors


def _hit(scores: np.ndarray, targets: list[int]) -> np.ndarray:
    target_scores = scores[np.arange(len(scores)), targets]
    return metrics.per_row_metrics(*metrics.target_rank_counts(scores, target_scores), ("hit_at_1",))[
        "hit_at_1"
    ]


TITLES = [
    "",  # padding
    "Argan Oil Hair Mask",
    "Dr. Bronner's Magic-Soap, Lavender",
    "Red Nail Polish",
    "Argan Oil Hair Serum",
    "Blue Nail Polish",
    "Garden Hose 50ft",
]
WORDS = [text_floors.title_words(t) for t in TITLES]


def test_title_words_are_lower_cased_alphanumeric_runs():
    assert text_floors.title_words("Dr. Bronner's Magic-Soap, 16oz") == {
        "dr",
        "bronner",
        "s",
        "magic",
        "soap",
        "16oz",
    }
    assert text_floors.title_words("") == frozenset()


def test_overlap_ranks_the_candidate_sharing_every_word_with_the_history_first():
    histories = [[0, 1], [3]]  # padding is skipped
    candidates = np.array([[6, 4, 1, 2], [6, 5, 3, 2]])
    scores = text_floors.overlap_scores(histories, candidates, WORDS, n_history=10)
    assert scores[0].argmax() == 2 and scores[0, 2] == 1.0  # the same title: Jaccard 1
    assert scores[0, 1] == pytest.approx(3 / 5)  # {argan, oil, hair} of {argan, oil, hair, mask, serum}
    assert scores[0, 0] == 0.0
    assert scores[1].argmax() == 2 and scores[1, 1] == pytest.approx(2 / 4)
    np.testing.assert_array_equal(_hit(scores, [2, 2]), [1.0, 1.0])


def test_overlap_reads_only_the_last_n_history_items_and_an_empty_history_ties():
    candidates = np.array([[4, 5]])
    recent_polish = text_floors.overlap_scores([[1, 3]], candidates, WORDS, n_history=1)
    assert recent_polish[0].argmax() == 1  # only "Red Nail Polish" counts
    both = text_floors.overlap_scores([[1, 3]], candidates, WORDS, n_history=2)
    assert both[0, 0] > recent_polish[0, 0]
    empty = text_floors.overlap_scores([[0, 0]], candidates, WORDS, n_history=10)
    np.testing.assert_array_equal(empty, [[0.0, 0.0]])
    np.testing.assert_allclose(_hit(empty, [0]), [0.5])  # all tie: chance


def test_cosine_prefers_the_candidate_nearest_the_history_mean():
    vectors = np.array([[0, 0], [1, 0], [0, 1], [0.6, 0.8]], dtype=np.float64)
    scores = text_floors.cosine_scores([[1, 1, 2]], np.array([[1, 2, 3]]), vectors, n_history=2)
    # last two history items: 1 and 2, mean (0.5, 0.5): item 3 is nearest
    assert scores[0].argmax() == 2
    np.testing.assert_allclose(scores[0], [np.sqrt(0.5), np.sqrt(0.5), 1.4 * np.sqrt(0.5)])
    np.testing.assert_array_equal(
        text_floors.cosine_scores([[0]], np.array([[1, 2]]), vectors, n_history=2), [[0.0, 0.0]]
    )


def test_cf_text_with_weight_zero_ranks_exactly_as_cf():
    rng = np.random.default_rng(0)
    cf = rng.normal(size=(50, 20))
    cf[3] = 1.5  # a constant row stays all-tied
    text = rng.random((50, 20))
    fused = text_floors.fuse(cf, text, 0.0)
    np.testing.assert_array_equal(np.argsort(-fused, axis=1), np.argsort(-cf, axis=1))
    targets = rng.integers(0, 20, 50).tolist()
    np.testing.assert_allclose(_hit(fused, targets), _hit(cf, targets))
    # a large weight follows the text instead
    np.testing.assert_array_equal(text_floors.fuse(cf, text, 1e6).argmax(axis=1), text.argmax(axis=1))


def test_zscore_rows_has_zero_mean_and_unit_spread():
    z = text_floors.zscore_rows(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    np.testing.assert_allclose(z[0].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[0].std(), 1.0)
    np.testing.assert_array_equal(z[1], [0.0, 0.0, 0.0])


def test_title_vectors_belong_to_their_item_index_or_are_absent():
    import pandas as pd
    import torch

    from allmrec_pipeline.errors import ConfigError
    from allmrec_pipeline.llm.inputs import title_vector_table

    frame = pd.DataFrame({"item_idx": [2, 1], "vector": [np.array([0.0, 1.0]), np.array([1.0, 0.0])]})
    table = title_vector_table(frame, 2)
    assert torch.equal(
        table, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    )  # by item index, row 0 padding
    assert title_vector_table(frame.iloc[:0], 2) is None  # none encoded
    with pytest.raises(ConfigError, match="cover 2 items, the item index has 3: rerun encode_item_titles"):
        title_vector_table(frame, 3)


def test_cross_domain_titles_are_encoded_only_when_that_scenario_runs_and_a_model_reads_them():
    import pandas as pd

    from allmrec_pipeline.pipelines.evaluate_scenarios.nodes import encode_cross_domain_item_titles

    items = pd.DataFrame({"item_id": ["a"], "title": ["soap"]})
    index = pd.DataFrame({"item_id": ["a"], "item_idx": [1]})
    settings = {"models": ["cf", "text_cosine"], "floors": {"n_history": 10, "cf_text_weights": [0.0]}}
    # a missing encoder would fail if it were loaded: neither call loads it
    off = encode_cross_domain_item_titles(items, index, settings, "/no/such/encoder", False)
    unread = encode_cross_domain_item_titles(
        items, index, {**settings, "models": ["cf"]}, "/no/such/encoder", True
    )
    assert off.empty and unread.empty and list(off.columns) == ["item_idx", "vector"]
    from allmrec_pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="params 'title_encoder'"):
        encode_cross_domain_item_titles(items, index, settings, "/no/such/encoder", True)
