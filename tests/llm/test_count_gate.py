"""The count gate: CF logits and the head's scores weighed per candidate, cold candidates by their own pair."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.inputs import build_recommender, cold_count_threshold, with_cold_threshold
from allmrec_pipeline.llm.recommender import Sample, recommender_from_checkpoint, zscore
from allmrec_pipeline.llm.training import (
    choose_gate,
    fit_head,
    frozen_head_features,
    holdout_rows,
    out_of_fold_scores,
    train_stage2,
    warm_up_head,
)
from allmrec_pipeline.models.checkpoint import module_checkpoint
from allmrec_pipeline.text_floors import zscore_rows
from tests.configs import stage2_training_config
from tests.llm.test_recommender import TEMPLATE, TITLES, WORDING, recommender, samples


def _with_cf_and_counts(batch, counts, seed: int = 5):
    generator = torch.Generator().manual_seed(seed)
    for sample in batch:
        sample.cf_scores = torch.randn(len(sample.candidates), generator=generator)
        sample.counts = torch.as_tensor([counts[c] for c in sample.candidates])
    return batch


def _checkpoint(model):
    """The model's projector checkpoint as stage 2 saves it (config, template, wording in its metadata)."""
    return module_checkpoint(
        model,
        "stage2_projectors",
        config=model.config.to_dict(),
        template=vars(TEMPLATE),
        wording=WORDING,
        cf_dim=5,
        item_dim=6,
    )


COUNTS = {i: c for i, c in enumerate([0, 0, 1, 2, 3, 4, 5, 6, 50])}  # item index -> training interactions


def test_zscore_matches_the_floors_numpy_version():
    values = torch.tensor([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]])
    np.testing.assert_allclose(zscore(values).numpy(), zscore_rows(values.numpy()), atol=1e-6)


@pytest.mark.parametrize("max_count", [0, 2, 5])
def test_the_cold_pair_applies_exactly_up_to_the_configured_count(max_count):
    model = recommender("embedding_head", cf_skip=True, gate_max_count=max_count).eval()
    batch = _with_cf_and_counts(samples(6), COUNTS)
    cold = model.cold_mask(batch)
    expected = torch.tensor([[COUNTS[c] <= max_count for c in s.candidates] for s in batch])
    assert torch.equal(cold, expected)
    # cold candidates by the CF logits alone, the rest by the head alone: each entry follows its own pair
    model.gate.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    with torch.no_grad():
        scores = model.scores(batch)
        head = model.head(*model.head_features(batch))
    cf = zscore(torch.stack([s.cf_scores for s in batch]))
    torch.testing.assert_close(scores, torch.where(expected, cf, zscore(head)))


def test_a_batch_whose_head_the_gate_weighs_0_skips_the_llm_and_scores_the_same():
    model = recommender("embedding_head", cf_skip=True, gate_max_count=5).eval()
    model.gate.copy_(torch.tensor([[1.0, 0.5], [1.0, 0.0]]))  # the head weighed for warm candidates only
    all_cold = _with_cf_and_counts(samples(4), dict.fromkeys(COUNTS, 0))
    mixed = _with_cf_and_counts(samples(4), COUNTS)
    assert not model.reads_head(all_cold)
    assert model.reads_head(mixed)
    calls = []
    hook = model.llm.get_input_embeddings().register_forward_pre_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        skipped = model.scores(all_cold)
        assert calls == []  # no LLM pass
        full = model.fuse(model.head_scores(all_cold), all_cold)  # what the pass would have given
        assert calls
        calls.clear()
        model.scores(mixed)
        assert calls  # a warm candidate: its head score counts, so the LLM runs
    hook.remove()
    assert torch.equal(skipped, full)
    assert not torch.equal(zscore(model.head_scores(all_cold)), torch.zeros_like(skipped))  # not a blank head


def test_the_gated_head_is_trained_alone_and_the_gate_is_saved_with_the_projectors():
    model = recommender("embedding_head", cf_skip=True, gate_max_count=2)
    assert torch.count_nonzero(model.head.query.weight) > 0  # a reader of its own, not a zero correction
    batch = _with_cf_and_counts(samples(8), COUNTS)
    with torch.no_grad():
        trained = model.head_scores(batch)
        alone = model.head(*model.eval().head_features(batch))
    torch.testing.assert_close(trained, alone)  # the loss sees the head alone: no CF prior added
    model.gate.copy_(torch.tensor([[1.0, 0.25], [0.5, 2.0]]))
    checkpoint = _checkpoint(model)
    again = recommender_from_checkpoint(checkpoint, model.llm, model.tokenizer, model.item_table, TITLES)
    torch.testing.assert_close(again.gate, model.gate)
    with torch.no_grad():
        torch.testing.assert_close(again.scores(batch), model.eval().scores(batch))


def _opposed(batch, n_cold: int) -> torch.Tensor:
    """The head ranks every target first; the CF logits rank it last in the first ``n_cold`` samples, whose
    target is the only cold candidate (one negative's logit 0.5 keeps any two weightings from tying exactly), and
    first in the rest."""
    head = torch.zeros(len(batch), 4)
    for row, sample in enumerate(batch):
        head[row, sample.target_pos] = 1.0
        sample.cf_scores = -head[row].clone() if row < n_cold else head[row].clone()
        if row < n_cold:
            sample.cf_scores[(sample.target_pos + 1) % 4] = 0.5
        sample.counts = torch.full((4,), 9)
        if row < n_cold:
            sample.counts[sample.target_pos] = 0
    return head


def test_choose_gate_takes_the_first_grid_point_with_the_best_mean_of_all_and_cold_hit_rates():
    model = recommender("embedding_head", cf_skip=True, gate_max_count=0)
    batch = samples(8)
    figures = choose_gate(model, _opposed(batch, 2), batch)
    assert figures["cold_targets"] == 2 and figures["samples"] == 8
    assert (figures["hit_at_1_all"], figures["hit_at_1_cold"], figures["hit_at_1_other"]) == (1.0, 1.0, 1.0)
    # in grid order, the first pair that lifts a cold target the CF model ranks last (z -1.61; head z +1.73)
    # above the best warm negative (CF z +1.15) is (1, 2); the other candidates keep the CF weighting (head 0)
    assert model.gate.tolist() == [[1.0, 0.0], [1.0, 2.0]]
    assert (figures["cold_cf"], figures["cold_head"], figures["other_head"]) == (1.0, 2.0, 0.0)


def test_without_cold_targets_the_gate_is_chosen_on_all_samples():
    model = recommender("embedding_head", cf_skip=True, gate_max_count=0)
    batch = samples(8)
    figures = choose_gate(model, _opposed(batch, 0), batch)
    assert figures["cold_targets"] == 0 and np.isnan(figures["hit_at_1_cold"])
    assert figures["hit_at_1_all"] == 1.0 and model.gate.tolist() == [[1.0, 0.0], [1.0, 0.0]]


def test_the_gate_never_trades_the_other_targets_hit_rate_for_the_cold_ones():
    model = recommender("embedding_head", cf_skip=True, gate_max_count=0)
    batch = samples(8)
    # every row holds the same scores: a cold candidate the head ranks first and the CF model last, and a warm
    # one the CF model ranks first. It is the target in six rows, the cold one in two: any gate wins the two
    # or the six, never both
    head = torch.zeros(8, 4)
    for row, sample in enumerate(batch):
        cold_item, warm_item = (sample.target_pos, (sample.target_pos + 1) % 4)[:: 1 if row < 2 else -1]
        head[row, cold_item] = 1.0
        sample.cf_scores = torch.zeros(4)
        sample.cf_scores[cold_item], sample.cf_scores[warm_item] = -1.0, 0.5
        sample.counts = torch.full((4,), 9)
        sample.counts[cold_item] = 0
    figures = choose_gate(model, head, batch)
    assert (figures["cf_hit_at_1_all"], figures["cf_hit_at_1_cold"], figures["cf_hit_at_1_other"]) == (
        0.75,
        0.0,
        1.0,
    )
    # the mean alone would lift the cold candidates: (0.25 + 1) / 2 against (0.75 + 0) / 2
    lifted = model.fuse(head, batch, torch.tensor([[1.0, 0.0], [0.0, 3.0]])).detach().numpy()
    hits = metrics.scores_per_row(lifted, np.array([s.target_pos for s in batch]), ("hit_at_1",))["hit_at_1"]
    assert (hits.mean(), hits[:2].mean()) == (0.25, 1.0)
    assert (figures["hit_at_1_all"], figures["hit_at_1_cold"], figures["hit_at_1_other"]) == (0.75, 0.0, 1.0)


def test_the_gate_is_chosen_by_the_warm_up_and_needs_one():
    model = recommender("embedding_head", cf_skip=True, gate_max_count=3)
    batch = _with_cf_and_counts(samples(10), COUNTS)
    figures = warm_up_head(model, batch, epochs=3, lr=1e-2, seed=0, holdout=0.2)
    assert (
        figures["gate"]["samples"] == 10
    )  # every warm-up sample, each scored by a head that never fitted it
    assert tuple(model.gate[1].tolist()) == (figures["gate"]["cold_cf"], figures["gate"]["cold_head"])
    with pytest.raises(ValueError, match="head_warmup_epochs"):
        train_stage2(
            recommender("embedding_head", cf_skip=True, gate_max_count=3),
            lambda epoch: batch,
            [],
            stage2_training_config(head_warmup_epochs=0),
            0,
            lambda scores, rows: 0.0,
            progress=False,
        )


@pytest.mark.parametrize("head_reads", ["soft_tokens", "title_tokens"])  # cached tensors, or padded tokens
def test_out_of_fold_scores_come_from_heads_that_never_fitted_the_scored_samples(head_reads):
    model = recommender("embedding_head", cf_skip=True, gate_max_count=3, head_reads=head_reads)
    batch = _with_cf_and_counts(samples(10), COUNTS)
    last, cand = frozen_head_features(model, batch)
    targets = torch.as_tensor([s.target_pos for s in batch])
    initial = copy.deepcopy(model.head.state_dict())
    held, rest = holdout_rows(10, 0.2, torch.Generator().manual_seed(0))
    fit_head(model.head, last[rest], cand[rest], targets[rest], 4, 1e-2, 0, holdout=0)
    scores = out_of_fold_scores(model.head, initial, last, cand, targets, 4, 1e-2, 0, 0.2)
    with torch.no_grad():
        torch.testing.assert_close(scores[held], model.head(last[held], cand[held]))
        for fold in rest.tensor_split(4):  # each other fold: a head fitted on everything but that fold
            head = copy.deepcopy(model.head)
            head.load_state_dict(initial)
            others = torch.cat([held, rest[~torch.isin(rest, fold)]])
            with torch.enable_grad():
                fit_head(head, last[others], cand[others], targets[others], 4, 1e-2, 0, holdout=0)
            torch.testing.assert_close(scores[fold], head(last[fold], cand[fold]))
            assert not torch.allclose(scores[fold], model.head(last[fold], cand[fold]))


def test_the_gate_needs_counts_and_a_sane_threshold():
    model = recommender("embedding_head", cf_skip=True, gate_max_count=1).eval()
    batch = samples(2)
    for sample in batch:
        sample.cf_scores = torch.zeros(4)
    with pytest.raises(ValueError, match="counts"), torch.no_grad():
        model.scores(batch)
    with pytest.raises(ValueError, match="gate_max_count"):
        recommender("embedding_head", cf_skip=True, gate_max_count=-1)
    assert not recommender("embedding_head", gate_max_count=1).gated  # without cf_skip it has no effect


def test_the_overlap_input_is_the_text_overlap_floor_z_scored():
    from allmrec_pipeline.text_floors import overlap_scores, title_words

    model = recommender("embedding_head", cf_skip=True, gate_max_count=0, gate_text_overlap=True).eval()
    batch = _with_cf_and_counts(samples(6), COUNTS)
    assert model.gate.shape == (2, 3)
    floor = overlap_scores(
        [s.history for s in batch],
        np.array([s.candidates for s in batch]),
        [title_words(t) for t in TITLES],
        model.config.n_history,
    )
    assert (floor > 0).any()  # the samples share title words with their histories
    with torch.no_grad():
        inputs = model.gate_inputs(model.head(*model.head_features(batch)), batch)
        np.testing.assert_allclose(inputs[..., 2].numpy(), zscore_rows(floor), atol=1e-6)
        # the gate that reads the overlap alone ranks as the floor does
        model.gate.copy_(torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))
        np.testing.assert_allclose(model.scores(batch).numpy(), zscore_rows(floor), atol=1e-6)


def test_with_the_overlap_the_gate_picks_from_every_weight_triple_and_is_saved():
    from allmrec_pipeline.llm.training import GATE_GRID, OVERLAP_GRID, gate_points

    points = gate_points(overlap=True)
    assert len(points) == len(GATE_GRID) * len(OVERLAP_GRID)
    assert points[0].tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]  # the CF model's weighting first
    model = recommender("embedding_head", cf_skip=True, gate_max_count=0, gate_text_overlap=True)
    batch = samples(8)
    figures = choose_gate(model, _opposed(batch, 2), batch)
    assert {"cold_text_overlap", "other_text_overlap"} <= figures.keys()
    assert figures["hit_at_1_all"] >= figures["cf_hit_at_1_all"]
    checkpoint = module_checkpoint(model, "stage2_projectors")
    assert torch.equal(checkpoint.tensors["gate"], model.gate)


def test_the_overlap_input_needs_the_count_gate():
    with pytest.raises(ValueError, match="gate_text_overlap needs the count gate"):
        recommender("embedding_head", cf_skip=True, gate_max_count=None, gate_text_overlap=True)


def _title_vectors(seed: int = 3) -> torch.Tensor:
    """Unit-length stand-ins for the sentence encoder's title vectors, row 0 (padding) zero."""
    vectors = F.normalize(torch.randn(len(TITLES), 8, generator=torch.Generator().manual_seed(seed)), dim=1)
    vectors[0] = 0
    return vectors


def _cosine_model(vectors: torch.Tensor | None, **config):
    """The default gate's form (the overlap and the cosine), every candidate with a training interaction warm
    (``config``: further model settings)."""
    return recommender(
        "embedding_head",
        cf_skip=True,
        gate_max_count=0,
        gate_text_overlap=True,
        gate_text_cosine=True,
        title_vectors=vectors,
        **config,
    )


def test_the_cosine_input_is_the_text_cosine_floor_z_scored_after_the_overlap():
    from allmrec_pipeline.text_floors import cosine_scores, overlap_scores, title_words

    vectors = _title_vectors()
    model = _cosine_model(vectors).eval()
    assert model.gate.shape == (2, 4)
    batch = _with_cf_and_counts(samples(6), COUNTS)
    histories, candidates = [s.history for s in batch], np.array([s.candidates for s in batch])
    floor = cosine_scores(histories, candidates, vectors.numpy(), model.config.n_history)
    overlap = overlap_scores(histories, candidates, [title_words(t) for t in TITLES], model.config.n_history)
    with torch.no_grad():
        inputs = model.gate_inputs(model.head(*model.head_features(batch)), batch)
        np.testing.assert_allclose(inputs[..., 2].numpy(), zscore_rows(overlap), atol=1e-6)
        np.testing.assert_allclose(inputs[..., 3].numpy(), zscore_rows(floor), atol=1e-6)
        # the gate that reads the cosine alone ranks as the text_cosine floor does
        model.gate.copy_(torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]]))
        np.testing.assert_allclose(model.scores(batch).numpy(), zscore_rows(floor), atol=1e-6)
    # without the overlap the cosine is the third input
    alone = recommender(
        "embedding_head", cf_skip=True, gate_max_count=0, gate_text_cosine=True, title_vectors=vectors
    ).eval()
    with torch.no_grad():
        inputs = alone.gate_inputs(alone.head(*alone.head_features(batch)), batch)
    assert inputs.shape[-1] == 3
    np.testing.assert_allclose(inputs[..., 2].numpy(), zscore_rows(floor), atol=1e-6)


def test_with_the_cosine_the_gate_picks_from_every_weight_quadruple_and_is_rebuilt_with_the_vectors():
    from allmrec_pipeline.llm.training import COSINE_GRID, GATE_GRID, OVERLAP_GRID, gate_points

    points = gate_points(overlap=True, cosine=True)
    assert len(points) == len(GATE_GRID) * len(OVERLAP_GRID) * len(COSINE_GRID)
    assert points[0].tolist() == [
        [1.0, 0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
    ]  # the CF model's weighting first
    # every overlap point is there, with the cosine weighed 0
    without = {tuple(p.flatten().tolist()) for p in gate_points(overlap=True)}
    assert without == {tuple(p[:, :3].flatten().tolist()) for p in points if not p[:, 3].any()}
    vectors = _title_vectors()
    model = _cosine_model(vectors)
    batch = _with_cf_and_counts(samples(8), COUNTS)
    figures = choose_gate(model, _opposed(batch, 2), batch)
    assert {"cold_text_cosine", "other_text_cosine", "cold_text_overlap"} <= figures.keys()
    assert figures["hit_at_1_all"] >= figures["cf_hit_at_1_all"]
    model.gate.copy_(torch.tensor([[1.0, 0.5, 0.25, 0.5], [0.5, 1.0, 0.5, 2.0]]))
    checkpoint = _checkpoint(model)
    assert not any("title_vectors" in key for key in checkpoint.tensors)  # an input, never saved
    again = recommender_from_checkpoint(
        checkpoint, model.llm, model.tokenizer, model.item_table, TITLES, title_vectors=vectors
    )
    with torch.no_grad():
        torch.testing.assert_close(again.eval().scores(batch), model.eval().scores(batch))
    # rebuilt without the vectors, the gate says what it lacks when it is used
    bare = recommender_from_checkpoint(checkpoint, model.llm, model.tokenizer, model.item_table, TITLES)
    with pytest.raises(ValueError, match="title vectors"):
        bare.scores(batch)


def test_with_the_cosine_the_gate_is_chosen_without_it_first_then_its_weights_on_that_point():
    from allmrec_pipeline.llm.training import COSINE_GRID, gate_table

    # items 1-3 (the histories and every target) share one direction, the other candidates one each: the
    # cosine ranks every target first; the CF logits rank it last, and the head is noise
    vectors = torch.zeros(len(TITLES), 8)
    vectors[1:4, 0] = 1.0
    for item in range(4, len(TITLES)):
        vectors[item, item - 3] = 1.0
    batch = []
    for row in range(8):
        candidates = [3, 4 + row % 5, 4 + (row + 1) % 5, 4 + (row + 2) % 5]
        order = [(row + k) % 4 for k in range(4)]
        candidates = [candidates[k] for k in order]
        target = candidates.index(3)
        cf = torch.ones(4)
        cf[target] = -1.0
        batch.append(Sample(torch.zeros(5), [1, 2], candidates, target, cf, torch.full((4,), 9)))
        batch[-1].counts[target] = 0  # a cold target
        batch[-1].counts[(target + 1) % 4] = 0  # and a cold negative
    head = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    settings = {"cf_skip": True, "gate_max_count": 0, "gate_text_overlap": True}
    plain = recommender("embedding_head", **settings)
    with_cosine = recommender("embedding_head", **settings, gate_text_cosine=True, title_vectors=vectors)
    choose_gate(plain, head, batch)
    figures = choose_gate(with_cosine, head, batch)
    # the first step is the choice without the cosine; the second moves only the cosine's weights
    torch.testing.assert_close(with_cosine.gate[:, :3], plain.gate)
    assert figures["cold_text_cosine"] > 0 and figures["hit_at_1_all"] == 1.0
    weighted = []
    for warm, cold in COSINE_GRID:
        point = torch.cat([plain.gate, torch.tensor([[warm], [cold]])], dim=1)
        weighted.append(point)
    table, _ = gate_table(with_cosine, head, batch, weighted)
    assert figures["hit_at_1_all"] == max(e[1]["all"] for e in table)


def test_the_cosine_input_needs_the_count_gate_and_vectors_of_the_same_items():
    with pytest.raises(ValueError, match="gate_text_cosine needs the count gate"):
        recommender("embedding_head", cf_skip=True, gate_max_count=None, gate_text_cosine=True)
    with pytest.raises(ValueError, match="title vectors cover 4 items, the titles 8"):
        recommender(
            "embedding_head",
            cf_skip=True,
            gate_max_count=0,
            gate_text_cosine=True,
            title_vectors=_title_vectors()[:5],
        )


def test_with_validation_rows_the_gate_is_chosen_on_them_by_the_warmed_up_head():
    model = recommender("embedding_head", cf_skip=True, gate_max_count=3)
    batch = _with_cf_and_counts(samples(10), COUNTS)
    rows = _with_cf_and_counts(samples(6), COUNTS, seed=9)
    figures = warm_up_head(model, batch, epochs=3, lr=1e-2, seed=0, holdout=0.2, gate_samples=rows)
    assert figures["gate"]["chosen_on"] == "validation_rows" and figures["gate"]["samples"] == 6
    chosen = model.gate.clone()
    with torch.no_grad():
        scores = model.head_scores(rows)
    again = choose_gate(model, scores, rows)  # the same choice from the head's scores of those rows
    assert torch.equal(model.gate, chosen) and again["hit_at_1_all"] == figures["gate"]["hit_at_1_all"]


def test_the_cold_share_gives_the_largest_count_whose_items_stay_within_it():
    # item counts (index 0 the padding): 2 items at 0, 3 at 1, 3 at 2, 2 at 9: shares 0.2, 0.5, 0.8, 1.0
    counts = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 9, 9], dtype=np.float64)
    assert cold_count_threshold(counts, 0.5) == 1
    assert cold_count_threshold(counts, 0.49) == 0
    assert cold_count_threshold(counts, 0.8) == 2
    assert cold_count_threshold(counts, 0.99) == 2  # 9 would make every item cold
    assert cold_count_threshold(counts, 0.1) == 0  # no count qualifies: only never-trained items
    assert cold_count_threshold(np.array([0, 3, 3, 4, 7]), 0.3) == 0
    with pytest.raises(ValueError, match="cold share"):
        cold_count_threshold(counts, 1.0)


def test_the_cold_share_sets_the_gate_threshold_only_where_the_count_gate_is_on():
    counts = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 9, 9], dtype=np.float64)
    stage2 = {"model": {"cf_skip": True, "gate_max_count": 5, "gate_cold_share": 0.5}, "training": {}}
    resolved, derived = with_cold_threshold(stage2, counts)
    assert resolved["model"]["gate_max_count"] == 1
    assert derived == {"gate_max_count": 1.0, "gate_cold_item_share": 0.5}
    assert stage2["model"]["gate_max_count"] == 5  # the parameters are not changed in place
    for model in (
        {"cf_skip": True, "gate_max_count": 5, "gate_cold_share": None},  # the number as set
        {"cf_skip": True, "gate_max_count": None, "gate_cold_share": 0.5},  # no gate (the no_gate ablation)
        {"cf_skip": False, "gate_max_count": 5, "gate_cold_share": 0.5},
    ):
        assert with_cold_threshold({"model": model}, counts) == ({"model": model}, {})
    # the recommender is built with the resolved number; the share itself is not one of its config's fields
    plain = recommender("embedding_head", cf_skip=True, gate_max_count=5)
    stage2 = {"model": {**plain.config.to_dict(), "gate_cold_share": 0.5}, "template": TEMPLATE.__dict__}
    built = build_recommender(
        plain.llm,
        plain.tokenizer,
        with_cold_threshold(stage2, counts)[0],
        WORDING,
        plain.item_table,
        TITLES,
        5,
    )
    assert built.config.gate_max_count == 1
    assert built.cold_mask(
        [Sample(torch.zeros(5), [1], [1, 2, 3], 0, counts=torch.tensor([0, 1, 2]))]
    ).tolist() == [[True, True, False]]
