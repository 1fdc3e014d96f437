"""The count gate chosen against bounds on three validation scenarios (``gate_choice: bounds``)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.gate_bounds import SCENARIOS, GateBounds, choose_gate_by_bounds
from allmrec_pipeline.llm.training import gate_points, warm_up_head
from allmrec_pipeline.pipelines.stage2.nodes import gate_rows
from tests.configs import stage2_training_config
from tests.llm.test_count_gate import COUNTS, _with_cf_and_counts
from tests.llm.test_recommender import recommender, samples

BOUNDS = GateBounds(
    overall_minus_cf=0.0, cold_minus_text_overlap=-0.02, cold_minus_cf=0.15, warm_minus_cf=0.0
)


def _model():
    return recommender("embedding_head", cf_skip=True, gate_max_count=3, gate_text_overlap=True).eval()


def _scenarios(n: int = 12) -> tuple[dict, dict]:
    rows = {s: _with_cf_and_counts(samples(n), COUNTS, seed=seed) for seed, s in enumerate(SCENARIOS)}
    generator = torch.Generator().manual_seed(7)
    head = {s: torch.randn(n, len(rows[s][0].candidates), generator=generator) for s in SCENARIOS}
    return rows, head


def _hits(model, head, rows, gate) -> np.ndarray:
    inputs = model.gate_inputs(head, rows)
    scores = (gate[model.cold_mask(rows).long()] * inputs).sum(-1).numpy()
    return metrics.scores_per_row(scores, np.array([s.target_pos for s in rows]), ("hit_at_1",))["hit_at_1"]


def _slack(model, head, rows, gate, cf_gate, bounds=BOUNDS) -> float:
    """``gate``'s smallest slack, the bounds read off ``metrics.paired_bootstrap`` point by point."""
    overlap_only = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    with torch.no_grad():
        hits = {s: _hits(model, head[s], rows[s], gate) for s in SCENARIOS}
        cf = {s: _hits(model, head[s], rows[s], cf_gate) for s in SCENARIOS}
        overlap = _hits(model, head["cold_item"], rows["cold_item"], overlap_only)
    return min(
        metrics.paired_bootstrap(hits["overall"], cf["overall"], seed=0)["ci_low"] - bounds.overall_minus_cf,
        metrics.paired_bootstrap(hits["cold_item"], overlap, seed=0)["ci_low"]
        - bounds.cold_minus_text_overlap,
        (hits["cold_item"] - cf["cold_item"]).mean() - bounds.cold_minus_cf,
        metrics.paired_bootstrap(hits["warm_item"], cf["warm_item"], seed=0)["ci_high"]
        - bounds.warm_minus_cf,
    )


def test_the_gate_is_the_point_whose_smallest_slack_against_the_bounds_is_largest():
    model = _model()
    rows, head = _scenarios()
    points = gate_points(overlap=True)[:: len(gate_points(overlap=True)) // 40]  # 40 points, the CF one first
    with torch.no_grad():
        figures = choose_gate_by_bounds(model, head, rows, points, BOUNDS, seed=0)
    slacks = [_slack(model, head, rows, gate, points[0]) for gate in points]
    assert len(set(np.round(slacks, 6))) > 3  # the points differ: the choice is not a tie
    best = int(np.argmax(slacks))
    assert torch.equal(model.gate, points[best])
    assert figures["smallest_slack"] == pytest.approx(slacks[best])
    assert figures["points_meeting_every_bound"] == sum(s >= 0 for s in slacks)
    assert figures["rows_cold_item"] == 12 and {"cold_text_overlap", "other_head"} <= figures.keys()


def test_the_centroid_is_the_mean_of_the_points_meeting_every_bound():
    model = _model()
    rows, head = _scenarios()
    points = gate_points(overlap=True)[:: len(gate_points(overlap=True)) // 40]
    slacks = np.array([_slack(model, head, rows, gate, points[0]) for gate in points])
    shift = float(np.median(slacks))  # bounds that about half the points meet: each slack moves by -shift
    bounds = GateBounds(*(getattr(BOUNDS, f) + shift for f in GateBounds.__dataclass_fields__))
    meeting = slacks - shift >= 0
    assert 0 < meeting.sum() < len(points)
    with torch.no_grad():
        figures = choose_gate_by_bounds(model, head, rows, points, bounds, seed=0, point="centroid")
    centroid = torch.stack([p for p, m in zip(points, meeting, strict=True) if m]).mean(0)
    assert torch.allclose(model.gate, centroid)
    assert figures["points_averaged"] == figures["points_meeting_every_bound"] == meeting.sum()
    assert figures["smallest_slack"] == pytest.approx(_slack(model, head, rows, centroid, points[0], bounds))
    # no point meets every bound: the best one
    strict = GateBounds(*(getattr(BOUNDS, f) + 10 for f in GateBounds.__dataclass_fields__))
    with torch.no_grad():
        figures = choose_gate_by_bounds(model, head, rows, points, strict, seed=0, point="centroid")
    assert torch.equal(model.gate, points[int(np.argmax(slacks))]) and figures["points_averaged"] == 1


def test_merit_is_the_point_meeting_every_bound_with_the_best_mean_hit_rate():
    model = _model()
    rows, head = _scenarios()
    points = gate_points(overlap=True)[:: len(gate_points(overlap=True)) // 40]
    slacks = np.array([_slack(model, head, rows, gate, points[0]) for gate in points])
    shift = float(np.median(slacks))
    bounds = GateBounds(*(getattr(BOUNDS, f) + shift for f in GateBounds.__dataclass_fields__))
    meeting = slacks - shift >= 0
    with torch.no_grad():
        merit = [np.mean([_hits(model, head[s], rows[s], gate).mean() for s in SCENARIOS]) for gate in points]
        figures = choose_gate_by_bounds(model, head, rows, points, bounds, seed=0, point="merit")
    expected = max(np.flatnonzero(meeting), key=lambda i: (merit[i], -i))  # the first of equals
    assert expected != int(np.argmax(slacks))  # merit and best differ here: the test tells them apart
    assert torch.equal(model.gate, points[expected]) and figures["points_averaged"] == 1
    assert figures["smallest_slack"] == pytest.approx(slacks[expected] - shift)
    strict = GateBounds(*(getattr(BOUNDS, f) + 10 for f in GateBounds.__dataclass_fields__))
    with torch.no_grad():
        choose_gate_by_bounds(model, head, rows, points, strict, seed=0, point="merit")
    assert torch.equal(model.gate, points[int(np.argmax(slacks))])  # no point meets every bound: the best


def test_the_bounds_rule_reads_the_overlap_floor_without_it_in_the_gate_and_needs_every_scenario():
    rows, head = _scenarios()
    plain = recommender("embedding_head", cf_skip=True, gate_max_count=3).eval()
    with_overlap = _model()
    # the same cold_item - text_overlap bound whether or not the gate weighs the overlap (the CF weighting)
    cf_only = [torch.tensor([[1.0, 0.0], [1.0, 0.0]])]
    a = choose_gate_by_bounds(plain, head, rows, cf_only, BOUNDS, 0)
    b = choose_gate_by_bounds(
        with_overlap, head, rows, [torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])], BOUNDS, 0
    )
    assert a["cold_minus_text_overlap_ci_low"] == b["cold_minus_text_overlap_ci_low"]
    with pytest.raises(ValueError, match="warm_item"):
        choose_gate_by_bounds(_model(), head, {**rows, "warm_item": []}, gate_points(overlap=True), BOUNDS, 0)


def test_the_warm_up_chooses_the_gate_on_three_scenarios_when_given_them():
    model = _model()
    batch = _with_cf_and_counts(samples(10), COUNTS)
    rows, _ = _scenarios(6)
    figures = warm_up_head(model, batch, 2, 1e-2, 0, holdout=0.2, gate_samples=rows, gate_bounds=BOUNDS)
    assert figures["gate"]["chosen_on"] == "validation_scenarios"
    assert figures["gate"]["rows_overall"] == 6 and model.gate.tolist() != torch.ones(2, 3).tolist()
    with pytest.raises(ValueError, match="bounds"):
        warm_up_head(_model(), batch, 2, 1e-2, 0, holdout=0.2, gate_samples=rows)


def test_with_the_bounds_rule_the_twins_users_leave_training_too(caplog):
    frame = pd.DataFrame(
        {
            "scenario": ["overall", "overall", "cold_item", "cold_item", "warm_item", "overall"],
            "split": ["valid", "valid", "valid", "valid", "valid", "test"],
            "user_idx": [1, 2, 3, 4, 5, 6],
        }
    )
    valid, twins, users = gate_rows(frame, stage2_training_config(gate_valid_rows=1, gate_choice="bounds"))
    assert valid["user_idx"].tolist() == [1, 2]
    assert {s: r["user_idx"].tolist() for s, r in twins.items()} == {"cold_item": [3], "warm_item": [5]}
    assert sorted(users) == [1, 2, 3, 5]  # the rows the gate reads; user 4's row is not read
    for nested in (
        gate_rows(frame, stage2_training_config(gate_valid_rows=1)),  # nested: as before
        gate_rows(frame, stage2_training_config(gate_valid_rows=1, gate_choice="bounds"), gated=False),
    ):
        assert nested[1] == {} and sorted(nested[2]) == [1, 2]
    # a twin without validation rows (a small dataset): the nested rule, said in the log
    with caplog.at_level(logging.WARNING):
        _, twins, users = gate_rows(
            frame[frame["scenario"] != "warm_item"],
            stage2_training_config(gate_valid_rows=1, gate_choice="bounds"),
        )
    assert twins == {} and sorted(users) == [1, 2] and "no warm_item validation row" in caplog.text
