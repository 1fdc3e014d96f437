"""The count gate's co-occurrence input (``stage2.model.gate_cooccurrence``): a second collaborative score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from allmrec_pipeline import metrics
from allmrec_pipeline.cooccurrence import cooccurrence_scores, cooccurrence_table
from allmrec_pipeline.llm.gate_bounds import _hits
from allmrec_pipeline.llm.recommender import (
    SoftPromptRecommender,
    fuse_inputs,
    gate_weights,
    recommender_from_checkpoint,
)
from allmrec_pipeline.llm.text_gate import TextGate
from allmrec_pipeline.llm.training import COOCCURRENCE_GRID, gate_points
from allmrec_pipeline.text_floors import zscore_rows
from tests.configs import stage2_config
from tests.llm.test_count_gate import COUNTS, _checkpoint, _with_cf_and_counts
from tests.llm.test_recommender import TEMPLATE, TITLES, WORDING, samples
from tests.llm.tiny import tiny_llm, tiny_tokenizer

SEQUENCES = [[1, 2, 3], [2, 3, 4, 5], [6, 7, 8], [1, 3, 5, 7]]
TABLE = cooccurrence_table(SEQUENCES, n_items=len(TITLES) - 1, window=2, backward=0.5)


def _model(cooccurrence=TABLE, titles=TITLES, foreign_items=False, **config) -> SoftPromptRecommender:
    torch.manual_seed(0)
    table = torch.randn(len(titles), 6)
    table[0] = 0
    settings = {"cf_skip": True, "gate_max_count": 0, "gate_text_overlap": True, "gate_cooccurrence": True}
    return SoftPromptRecommender(
        tiny_llm("llama"),
        tiny_tokenizer(),
        TEMPLATE,
        WORDING,
        table,
        titles,
        cf_dim=5,
        config=stage2_config(objective="embedding_head", **{**settings, **config}),
        cooccurrence=cooccurrence,
        foreign_items=foreign_items,
    ).eval()


def _inputs(model, batch):
    with torch.no_grad():
        return model.gate_inputs(model.head(*model.head_features(batch)), batch)


def test_the_cooccurrence_input_is_the_z_scored_log_of_the_histories_cooccurrence_last():
    model = _model()
    assert model.gate.shape == (2, 4)
    batch = _with_cf_and_counts(samples(6), COUNTS)
    histories, candidates = [s.history for s in batch], np.array([s.candidates for s in batch])
    raw = cooccurrence_scores(
        TABLE, histories, candidates, model.config.n_history, model.config.cooccurrence_decay
    )
    assert (raw > 0).any() and (raw == 0).any()  # the rows tell candidates apart
    np.testing.assert_allclose(_inputs(model, batch)[..., 3].numpy(), zscore_rows(np.log1p(raw)), atol=1e-6)
    assert set(gate_weights(model.config, model.gate)) >= {"cold_cooccurrence", "other_cooccurrence"}


def test_the_table_is_saved_with_the_projectors_and_another_domains_items_score_zero():
    model = _model()
    with torch.no_grad():
        model.gate.copy_(torch.tensor([[1.0, 0.5, 0.25, 1.0], [0.5, 0.0, 1.0, 0.5]]))
    batch = _with_cf_and_counts(samples(6), COUNTS)
    checkpoint = _checkpoint(model)
    again = recommender_from_checkpoint(checkpoint, model.llm, model.tokenizer, model.item_table, TITLES)
    np.testing.assert_array_equal(again.cooccurrence.keys, TABLE.keys)
    with torch.no_grad():
        torch.testing.assert_close(again.eval().scores(batch), model.scores(batch))
    foreign = recommender_from_checkpoint(
        checkpoint, model.llm, model.tokenizer, model.item_table, TITLES, foreign_items=True
    )
    assert foreign.cooccurrence is None
    assert not _inputs(foreign.eval(), batch)[..., 3].any()
    # the LLM-free gate reads the same column from the checkpoint (and zeros for foreign items)
    gate = TextGate.from_checkpoint(checkpoint, TITLES, None)
    assert gate.columns == ["cf", "text_overlap", "cooccurrence"]
    cf = torch.stack([s.cf_scores for s in batch]).numpy()
    histories, candidates = [s.history for s in batch], np.array([s.candidates for s in batch])
    torch.testing.assert_close(gate.inputs(histories, candidates, cf), _inputs(model, batch)[..., [0, 2, 3]])
    away = TextGate.from_checkpoint(checkpoint, TITLES, None, foreign_items=True)
    assert not away.inputs(histories, candidates, cf)[..., 2].any()


def test_the_cooccurrence_input_needs_the_count_gate_a_table_and_one_of_the_same_items():
    with pytest.raises(ValueError, match="gate_cooccurrence needs the count gate"):
        _model(gate_max_count=None, gate_text_overlap=False)
    with pytest.raises(ValueError, match="needs the training sequences' co-occurrence table"):
        _model(cooccurrence=None)
    small = cooccurrence_table(SEQUENCES, n_items=len(TITLES) + 2, window=2, backward=0.5)
    with pytest.raises(ValueError, match="covers 11 items, the titles 8"):
        _model(cooccurrence=small)
    # another domain's items: any number of them
    assert _model(titles=TITLES[:5], foreign_items=True).cooccurrence is None


def test_the_grid_crosses_every_point_with_the_cooccurrence_weights_the_zero_pair_first():
    plain = gate_points(overlap=True, cosine=True)
    crossed = gate_points(overlap=True, cosine=True, cooccurrence=True)
    assert len(crossed) == len(plain) * len(COOCCURRENCE_GRID)
    assert COOCCURRENCE_GRID[0] == (0.0, 0.0)
    assert all(
        torch.equal(p[:, :4], q) for p, q in zip(crossed[:: len(COOCCURRENCE_GRID)], plain, strict=True)
    )
    assert all(not p[:, 4].any() for p in crossed[:: len(COOCCURRENCE_GRID)])


def test_many_gates_at_once_hit_as_each_gate_fused_and_scored_alone():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randint(-2, 3, (40, 6, 4), generator=generator).float()  # small integers: many ties
    cold = torch.rand(40, 6, generator=generator) < 0.3
    targets = torch.randint(0, 6, (40,), generator=generator).numpy()
    points = gate_points(overlap=True, cosine=True)[::37]
    alone = np.stack(
        [
            metrics.scores_per_row(fuse_inputs(inputs, cold, p).numpy(), targets, ("hit_at_1",))["hit_at_1"]
            for p in points
        ]
    )
    at_once = _hits(inputs, cold, torch.stack(points), targets)
    assert ((alone > 0) & (alone < 1)).any()  # split ties are among them
    np.testing.assert_array_equal(at_once, alone)
