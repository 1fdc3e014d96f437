"""The text matcher (``stage2.model.gate_cosine_rank``): what it scores untrained, what it trains on, and how the
count gate reads it and the checkpoint keeps it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from allmrec_pipeline.llm.recommender import recommender_from_checkpoint
from allmrec_pipeline.llm.text_matcher import (
    MatcherTraining,
    TextMatcher,
    match_scores,
    recent_matrix,
    train_text_matcher,
    transitions,
)
from allmrec_pipeline.text_floors import zscore_rows
from tests.llm.test_count_gate import (
    COUNTS,
    _checkpoint,
    _cosine_model,
    _title_vectors,
    _with_cf_and_counts,
)
from tests.llm.test_recommender import TITLES, recommender, samples


def _vectors(n_items: int = 12, dim: int = 6, seed: int = 0) -> torch.Tensor:
    vectors = F.normalize(torch.randn(n_items + 1, dim, generator=torch.Generator().manual_seed(seed)), dim=1)
    vectors[0] = 0
    return vectors


def test_untrained_it_scores_the_cosine_with_the_nearest_recent_history_title():
    vectors = _vectors()
    histories = [[0, 0, 5, 2, 7], [3], [], [9, 4, 1, 8]]  # padding skipped; the third has no history
    candidates = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]])
    scores = match_scores(TextMatcher(6, 4), histories, candidates, vectors, n_history=3)
    v = vectors.double().numpy()
    for row, history in enumerate(histories):
        recent = [i for i in history if i][-3:]
        for col, item in enumerate(candidates[row]):
            expected = max(v[item] @ v[h] for h in recent) if recent else 0.0
            assert scores[row, col] == pytest.approx(expected, abs=1e-6)
    # only the 3 most recent count: item 9 (the oldest of the fourth history) is not read
    assert recent_matrix(histories, 3).tolist() == [[5, 2, 7], [0, 0, 3], [0, 0, 0], [4, 1, 8]]


def test_it_trains_only_on_transitions_to_items_with_at_most_the_configured_count():
    counts = np.array([0, 1, 9, 3, 0, 2])
    recent, targets = transitions([[1, 2, 3], [0, 4, 5, 2, 1]], counts, n_history=2, max_count=3)
    # item 2 (9 interactions) is never a target, but stays in the histories
    assert targets.tolist() == [3, 5, 1]
    assert recent.tolist() == [[1, 2], [0, 4], [5, 2]]
    # null: every transition, item 2 included
    assert transitions([[1, 2, 3], [0, 4, 5, 2, 1]], counts, n_history=2, max_count=None)[1].tolist() == [
        2,
        3,
        5,
        2,
        1,
    ]
    with pytest.raises(ValueError, match="matcher_max_count"):
        train_text_matcher(
            TextMatcher(6, 2), [[1, 2]], _vectors(), np.full(13, 99), 2, MatcherTraining(1, 4, 2, 0.01, 3), 0
        )


def test_training_fits_the_transitions_and_leaves_the_matcher_frozen_and_reproducible():
    # each item i is followed by item i + 6 (titles far apart in the frozen space): the plain cosine cannot tell
    vectors = _vectors(n_items=12, dim=8, seed=1)
    sequences = [[i, i + 6] for i in range(1, 7)] * 20
    counts = np.zeros(13)
    config = MatcherTraining(steps=300, batch_size=16, negatives=5, lr=0.05, max_count=10)
    histories, candidates = (
        [[i] for i in range(1, 7)],
        np.array([[i + 6, *(j for j in range(7, 13) if j != i + 6)] for i in range(1, 7)]),
    )

    def hits(matcher):
        return (match_scores(matcher, histories, candidates, vectors, 1).argmax(1) == 0).mean()

    before = hits(TextMatcher(8, 4))
    fitted = TextMatcher(8, 4)
    figures = train_text_matcher(fitted, sequences, vectors, counts, 1, config, seed=3, progress=False)
    assert figures["transitions"] == len(sequences)
    assert figures["last_loss"] < figures["first_loss"]
    assert hits(fitted) == 1.0 > before
    assert not any(p.requires_grad for p in fitted.parameters())
    again = TextMatcher(8, 4)
    train_text_matcher(again, sequences, vectors, counts, 1, config, seed=3, progress=False)
    torch.testing.assert_close(again.a, fitted.a)


def _matcher_model(vectors: torch.Tensor | None):
    return _cosine_model(vectors, gate_cosine_rank=3)


def test_the_gate_reads_the_matcher_in_the_cosine_column_and_the_checkpoint_keeps_it():
    vectors = _title_vectors()
    model = _matcher_model(vectors).eval()
    with torch.no_grad():
        model.matcher.a.normal_(generator=torch.Generator().manual_seed(7))  # a trained matcher stand-in
    batch = _with_cf_and_counts(samples(6), COUNTS)
    histories, candidates = [s.history for s in batch], np.array([s.candidates for s in batch])
    expected = zscore_rows(
        match_scores(model.matcher, histories, candidates, vectors, model.config.n_history)
    )
    with torch.no_grad():
        inputs = model.gate_inputs(model.head(*model.head_features(batch)), batch)
    np.testing.assert_allclose(inputs[..., 3].numpy(), expected, atol=1e-5)
    model.gate.copy_(torch.tensor([[1.0, 0.5, 0.25, 0.5], [0.5, 1.0, 0.5, 2.0]]))
    checkpoint = _checkpoint(model)
    assert {"matcher.a", "matcher.b"} <= checkpoint.tensors.keys()
    again = recommender_from_checkpoint(
        checkpoint, model.llm, model.tokenizer, model.item_table, TITLES, title_vectors=vectors
    )
    with torch.no_grad():
        torch.testing.assert_close(again.eval().scores(batch), model.scores(batch))
    # rebuilt without the vectors (a preference prompt never reads the gate), the matcher keeps its width
    bare = recommender_from_checkpoint(checkpoint, model.llm, model.tokenizer, model.item_table, TITLES)
    assert bare.matcher.a.shape == model.matcher.a.shape
    with pytest.raises(ValueError, match="title vectors"):
        bare.scores(batch)


def test_a_fresh_matcher_model_needs_the_title_vectors_and_a_positive_rank():
    with pytest.raises(ValueError, match="gate_cosine_rank needs the items' title vectors"):
        _matcher_model(None)
    with pytest.raises(ValueError, match="gate_cosine_rank must be null or an integer >= 1"):
        _cosine_model(_title_vectors(), gate_cosine_rank=0)
    # without the cosine input the rank is not read: no matcher
    plain = recommender("embedding_head", cf_skip=True, gate_max_count=0, gate_cosine_rank=3)
    assert plain.matcher is None
