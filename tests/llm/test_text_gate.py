"""The count gate without the LLM (``llm.text_gate``): the LLM-free reference scored from a stage-2 checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from allmrec_pipeline.llm.gate_bounds import (
    SCENARIOS,
    GateBounds,
    choose_gate_by_bounds,
    overlap_hits,
    pick_gate,
)
from allmrec_pipeline.llm.recommender import fuse_inputs
from allmrec_pipeline.llm.text_gate import TextGate
from allmrec_pipeline.llm.text_matcher import match_scores
from allmrec_pipeline.llm.training import gate_points
from tests.llm.test_count_gate import COUNTS, _checkpoint, _cosine_model, _title_vectors, _with_cf_and_counts
from tests.llm.test_recommender import TITLES, recommender, samples

BOUNDS = GateBounds(
    overall_minus_cf=0.0, cold_minus_text_overlap=-0.02, cold_minus_cf=0.15, warm_minus_cf=0.0
)


def _gated_matcher_model():
    """A gated model weighing z(CF), z(head), z(text_overlap) and a (stand-in trained) text matcher."""
    vectors = _title_vectors()
    model = _cosine_model(vectors, gate_cosine_rank=3).eval()
    with torch.no_grad():
        model.matcher.a.normal_(generator=torch.Generator().manual_seed(7))
    return model, vectors


def _rows(batch):
    histories = [s.history for s in batch]
    candidates = np.array([s.candidates for s in batch])
    cf = torch.stack([s.cf_scores for s in batch]).numpy()
    counts = np.array([[COUNTS[c] for c in s.candidates] for s in batch])
    return histories, candidates, cf, counts


def test_the_text_gate_scores_the_models_gate_inputs_less_the_head_from_its_checkpoint():
    model, vectors = _gated_matcher_model()
    batch = _with_cf_and_counts(samples(6), COUNTS)
    gate = TextGate.from_checkpoint(_checkpoint(model), TITLES, vectors.numpy())
    assert gate.columns == ["cf", "text_overlap", "text_matcher"]
    histories, candidates, cf, counts = _rows(batch)
    head = torch.randn(len(batch), len(batch[0].candidates), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = model.gate_inputs(head, batch)
    inputs = gate.inputs(histories, candidates, cf)
    torch.testing.assert_close(inputs, full[..., [0, 2, 3]])
    assert torch.equal(gate.cold(counts), model.cold_mask(batch))
    # the gate with its head weighed 0 ranks exactly as the model's with the same weights and the head's zeroed
    weights = torch.tensor([[1.0, 0.25, 0.5], [0.5, 1.0, 2.0]])
    with_head = torch.tensor([[1.0, 0.0, 0.25, 0.5], [0.5, 0.0, 1.0, 2.0]])
    torch.testing.assert_close(
        fuse_inputs(inputs, gate.cold(counts), weights), model.fuse(head, batch, with_head)
    )
    # text_matcher: the fitted matcher alone, as trained (not z-scored)
    np.testing.assert_allclose(
        gate.matcher_scores(histories, candidates),
        match_scores(model.matcher, histories, candidates, vectors, model.config.n_history),
        atol=1e-6,
    )


def test_the_text_gates_grid_is_the_models_without_the_head_and_starts_with_the_cf_weighting():
    model, vectors = _gated_matcher_model()
    gate = TextGate.from_checkpoint(_checkpoint(model), TITLES, vectors.numpy())
    points = gate.points()
    grid = gate_points(overlap=True, cosine=True)
    assert len(points) == sum(1 for p in grid if not p[:, 1].any()) == 3 * 12 * 12
    assert torch.equal(points[0], torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert len({tuple(p.flatten().tolist()) for p in points}) == len(points)


def test_the_llm_free_choice_is_the_models_rule_on_the_points_that_weigh_the_head_zero():
    model, vectors = _gated_matcher_model()
    rows = {s: _with_cf_and_counts(samples(12), COUNTS, seed=seed) for seed, s in enumerate(SCENARIOS)}
    head = {s: torch.zeros(12, len(rows[s][0].candidates)) for s in SCENARIOS}
    gate = TextGate.from_checkpoint(_checkpoint(model), TITLES, vectors.numpy())
    points = gate.points()[::12]  # 36 points, the CF weighting first
    inputs, cold, targets = {}, {}, {}
    for s in SCENARIOS:
        histories, candidates, cf, counts = _rows(rows[s])
        inputs[s], cold[s] = gate.inputs(histories, candidates, cf), gate.cold(counts)
        targets[s] = np.array([x.target_pos for x in rows[s]])
    histories, candidates, _, _ = _rows(rows["cold_item"])
    reference = overlap_hits(histories, candidates, gate.words, gate.config.n_history, targets["cold_item"])
    best, figures = pick_gate(inputs, cold, targets, reference, points, BOUNDS, seed=0)

    # the same points with a zero head column, chosen by the model's rule on the same rows
    def head_column(p):
        return torch.cat([p[:, :1], torch.zeros(2, 1), p[:, 1:]], dim=1)

    chosen = choose_gate_by_bounds(model, head, rows, [head_column(p) for p in points], BOUNDS, seed=0)
    assert torch.equal(model.gate, head_column(best))
    assert chosen["smallest_slack"] == figures["smallest_slack"]
    assert chosen["points_meeting_every_bound"] == figures["points_meeting_every_bound"]


def test_a_model_without_the_count_gate_or_its_vectors_is_refused_by_name():
    plain = recommender("embedding_head", cf_skip=True)
    with pytest.raises(ValueError, match="no count gate"):
        TextGate.from_checkpoint(_checkpoint(plain), TITLES, None)
    model, _ = _gated_matcher_model()
    with pytest.raises(ValueError, match="item_title_vectors"):
        TextGate.from_checkpoint(_checkpoint(model), TITLES, None)
    no_matcher = recommender("embedding_head", cf_skip=True, gate_max_count=3, gate_text_overlap=True)
    gate = TextGate.from_checkpoint(_checkpoint(no_matcher), TITLES, None)
    assert gate.columns == ["cf", "text_overlap"]
    with pytest.raises(ValueError, match="no text matcher"):
        gate.matcher_scores([[1, 2]], np.array([[3, 4]]))
