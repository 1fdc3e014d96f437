"""``cf_skip``: the head corrects the frozen CF logits; a zeroed correction ranks exactly as the CF model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.training import warm_up_head
from tests.llm.test_recommender import recommender, samples


def _with_cf(batch, seed: int = 5):
    generator = torch.Generator().manual_seed(seed)
    for sample in batch:
        sample.cf_scores = torch.randn(len(sample.candidates), generator=generator)
    return batch


@pytest.mark.parametrize("head_reads", ["soft_tokens", "titles", "title_tokens"])
def test_the_untrained_correction_is_zero_and_ranks_exactly_as_cf(head_reads):
    model = recommender("embedding_head", cf_skip=True, head_reads=head_reads).eval()
    batch = _with_cf(samples(6))
    batch[2].cf_scores = torch.full((4,), 0.7)  # a constant row: all tie, as in cf
    with torch.no_grad():
        scores = model.scores(batch).numpy()
        correction = model.head(*model.head_features(batch))
    assert torch.count_nonzero(correction) == 0
    cf = torch.stack([s.cf_scores for s in batch]).numpy()
    np.testing.assert_array_equal(
        np.argsort(-scores, axis=1, kind="stable"), np.argsort(-cf, axis=1, kind="stable")
    )
    targets = np.array([s.target_pos for s in batch])

    def hits(values):
        return metrics.per_row_metrics(
            *metrics.target_rank_counts(values, values[np.arange(len(values)), targets]), ("hit_at_1",)
        )["hit_at_1"]

    np.testing.assert_allclose(hits(scores), hits(cf))
    np.testing.assert_allclose(scores[2], 0.0)


@pytest.mark.parametrize("head_reads", ["soft_tokens", "title_tokens"])
def test_a_trained_correction_moves_the_scores_away_from_cf(head_reads):
    model = recommender("embedding_head", cf_skip=True, head_reads=head_reads)
    batch = _with_cf(samples(8))
    figures = warm_up_head(model, batch, epochs=20, lr=5e-2, seed=0, holdout=0)
    assert figures["best_epoch"] == 20
    with torch.no_grad():
        correction = model.head(*model.eval().head_features(batch))
    assert torch.count_nonzero(correction) > 0
    model.train()
    model.loss(batch).backward()  # the projectors learn through the skip too
    assert model.user_proj.net[0].weight.grad is not None


def test_cf_skip_needs_the_cf_scores_and_the_embedding_head():
    model = recommender("embedding_head", cf_skip=True).eval()
    with pytest.raises(ValueError, match="cf_scores"), torch.no_grad():
        model.scores(samples(2))
    with pytest.raises(ValueError, match="embedding_head"):
        recommender("lm", cf_skip=True)
