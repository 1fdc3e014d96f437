"""The count gate chosen against bounds on three validation scenarios (``stage2.training.gate_choice: bounds``).

The nested rule (``training.choose_gate``) reads one set of rows, the first ``overall`` validation rows, whose
cold targets are few (27 of 300 on Video Games): too few to weigh text for cold candidates. This rule reads the
first rows of each of three validation scenarios, ``overall`` and its two twins, ``cold_item`` and ``warm_item``
(the ``overall`` validation rows whose target is in that popularity group, derived by ``split_sequences`` as the
test scenarios are), and takes the point of the gate's whole grid whose *smallest slack* against four bounds on
paired differences is largest:

- ``overall`` − the CF model's weighting: the interval's lower bound at least ``overall_minus_cf``;
- ``cold_item`` − the word-overlap ranking: the lower bound at least ``cold_minus_text_overlap``;
- ``cold_item`` − the CF model's weighting: the difference at least ``cold_minus_cf``;
- ``warm_item`` − the CF model's weighting: the upper bound at least ``warm_minus_cf``.

Intervals are 95% paired bootstraps that resample rows (one seeded draw shared by every point, as
``metrics.paired_bootstrap`` draws them). ``stage2.training.gate_point: centroid`` takes instead the mean weights
of every point that meets every bound, ``merit`` the point among them with the best mean of the three scenarios'
Hit@1 (``pick_gate``). Plain PyTorch and NumPy: no Kedro, no MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from allmrec_pipeline import metrics
from allmrec_pipeline.text_floors import overlap_scores

from .recommender import Sample, SoftPromptRecommender, gate_weights

SCENARIOS = ("overall", "cold_item", "warm_item")


@dataclass(frozen=True)
class GateBounds:
    """``stage2.training.gate_bounds``: the least value of each paired difference (Hit@1)."""

    overall_minus_cf: float  # the lower bound of overall − cf
    cold_minus_text_overlap: float  # the lower bound of cold_item − text_overlap
    cold_minus_cf: float  # the difference cold_item − cf
    warm_minus_cf: float  # the upper bound of warm_item − cf


_CHUNK_ELEMENTS = (
    8_000_000  # the most gate-weighted inputs (points · rows · candidates · inputs) held at once
)


def _hits(inputs: torch.Tensor, cold: torch.Tensor, points: torch.Tensor, targets: np.ndarray) -> np.ndarray:
    """``(P, N)`` Hit@1 of each gate of ``points`` ``(P, 2, K)`` (a tie at the top splits the hit), as
    ``metrics.scores_per_row`` scores ``fuse_inputs`` of each gate (the same products and sums), many points at
    once."""
    index = cold.long()
    target = torch.as_tensor(np.asarray(targets), device=inputs.device).view(1, -1, 1)
    per_chunk = max(1, _CHUNK_ELEMENTS // max(1, inputs.numel()))
    out = []
    for chunk in points.to(inputs.device).split(per_chunk):
        scores = (chunk[:, index] * inputs).sum(-1)  # (p, N, C): fuse_inputs of each point
        if torch.isnan(scores).any():
            raise ValueError("a gate input is NaN: the count gate cannot be chosen on these rows")
        mine = scores.gather(2, target.expand(len(chunk), -1, 1))
        better = (scores > mine).sum(-1)
        ties = (scores == mine).sum(-1) - 1
        out.append(torch.where(better == 0, 1.0 / (ties + 1).double(), 0.0).cpu().numpy())
    return np.concatenate(out)


def validation_rows(eval_candidates: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """``scenario``'s frozen validation rows (``split_sequences``' ``eval_candidates``), in their stored order:
    a rule reading the first ``n`` reads the same rows wherever it runs."""
    return eval_candidates[(eval_candidates["scenario"] == scenario) & (eval_candidates["split"] == "valid")]


def overlap_hits(
    histories: list, candidates: np.ndarray, words: list[frozenset[str]], n_history: int, targets: np.ndarray
) -> np.ndarray:
    """``(N,)`` Hit@1 of the ``text_overlap`` floor's ranking (a tie at the top splits the hit)."""
    overlap = overlap_scores(histories, candidates, words, n_history)
    return metrics.scores_per_row(overlap, targets, ("hit_at_1",))["hit_at_1"]


def _slack_table(
    inputs: dict[str, torch.Tensor],
    cold: dict[str, torch.Tensor],
    targets: dict[str, np.ndarray],
    reference_hits: np.ndarray,
    points: list[torch.Tensor],
    bounds: GateBounds,
    seed: int,
) -> dict[str, np.ndarray]:
    """Each point's smallest slack against ``bounds``, its four figures and its Hit@1s, ``(P,)`` each (the first
    point is the CF model's weighting, the reference of three figures)."""
    missing = [s for s in SCENARIOS if s not in inputs or not len(inputs[s])]
    if missing:
        raise ValueError(f"the bounds rule needs validation rows of {missing}: none were given")
    stacked = torch.stack(points).float()
    hits = {s: _hits(inputs[s], cold[s], stacked, targets[s]) for s in SCENARIOS}
    overall_low, _ = metrics.bootstrap_ci_rows(hits["overall"] - hits["overall"][0], seed)
    cold_low, _ = metrics.bootstrap_ci_rows(hits["cold_item"] - reference_hits, seed)
    cold_cf = (hits["cold_item"] - hits["cold_item"][0]).mean(axis=1)
    _, warm_high = metrics.bootstrap_ci_rows(hits["warm_item"] - hits["warm_item"][0], seed)
    slack = np.minimum.reduce(
        [
            overall_low - bounds.overall_minus_cf,
            cold_low - bounds.cold_minus_text_overlap,
            cold_cf - bounds.cold_minus_cf,
            warm_high - bounds.warm_minus_cf,
        ]
    )
    return {
        "smallest_slack": slack,
        "overall_minus_cf_ci_low": overall_low,
        "cold_minus_text_overlap_ci_low": cold_low,
        "cold_minus_cf": cold_cf,
        "warm_minus_cf_ci_high": warm_high,
        **{f"hit_at_1_{s}": hits[s].mean(axis=1) for s in SCENARIOS},
        **{f"cf_hit_at_1_{s}": np.full(len(points), hits[s][0].mean()) for s in SCENARIOS},
    }


def _figures(table: dict[str, np.ndarray], index: int, targets: dict[str, np.ndarray]) -> dict:
    return {
        "smallest_slack": float(table["smallest_slack"][index]),
        "points_meeting_every_bound": int((table["smallest_slack"] >= 0).sum()),
        **{k: float(v[index]) for k, v in table.items() if k != "smallest_slack"},
        **{f"rows_{s}": len(targets[s]) for s in SCENARIOS},
    }


@torch.no_grad()
def pick_gate(
    inputs: dict[str, torch.Tensor],
    cold: dict[str, torch.Tensor],
    targets: dict[str, np.ndarray],
    reference_hits: np.ndarray,
    points: list[torch.Tensor],
    bounds: GateBounds,
    seed: int,
    point: str = "best",
) -> tuple[torch.Tensor, dict]:
    """The gate ``point`` (``stage2.training.gate_point``) picks among ``points`` (the first: the CF model's
    weighting) against ``bounds``, and its figures on these rows: ``best``, the point with the largest smallest
    slack, the first of equals; ``centroid``, the mean weights of every point meeting every bound; ``merit``, the
    point among those with the best mean of the three scenarios' Hit@1, the first of equals (both ``best`` where
    no point meets every bound); ``points_averaged``: how many points the gate is the mean of. For each scenario of
    ``SCENARIOS``: the gate's inputs ``(N, C, K)``, the candidates' cold flags ``(N, C)`` and the targets' columns
    ``(N,)``; ``reference_hits``: the word-overlap ranking's Hit@1 on the ``cold_item`` rows."""
    if point not in ("best", "centroid", "merit"):
        raise ValueError(f"stage2.training.gate_point must be best, centroid or merit, not {point!r}")
    table = _slack_table(inputs, cold, targets, reference_hits, points, bounds, seed)
    admissible = np.flatnonzero(table["smallest_slack"] >= 0)
    if point != "centroid" or not len(admissible):  # one grid point; argmax keeps the first of equals
        if point == "merit" and len(admissible):
            merit = np.mean([table[f"hit_at_1_{s}"][admissible] for s in SCENARIOS], axis=0)
            index = int(admissible[np.argmax(merit)])
        else:
            index = int(np.argmax(table["smallest_slack"]))
        return points[index].clone(), {**_figures(table, index, targets), "points_averaged": 1}
    gate = torch.stack([points[i] for i in admissible]).float().mean(0)
    own = _slack_table(inputs, cold, targets, reference_hits, [points[0], gate], bounds, seed)
    figures = {**_figures(own, 1, targets), "points_meeting_every_bound": len(admissible)}
    return gate, {**figures, "points_averaged": len(admissible)}


@torch.no_grad()
def choose_gate_by_bounds(
    model: SoftPromptRecommender,
    head_scores: dict[str, torch.Tensor],
    samples: dict[str, list[Sample]],
    points: list[torch.Tensor],
    bounds: GateBounds,
    seed: int,
    point: str = "best",
) -> dict:
    """Set ``model.gate`` to the gate ``pick_gate`` picks among ``points`` (the first: the CF model's weighting)
    against ``bounds`` on ``samples[s]`` (scored by the head as ``head_scores[s]``) for each scenario of
    ``SCENARIOS`` (``point``: ``best`` or ``centroid``). The word-overlap ranking is the ``text_overlap`` floor's
    over the model's ``n_history`` history titles. Returns the weights, each difference and the smallest slack."""
    missing = [s for s in SCENARIOS if not samples.get(s)]
    if missing:
        raise ValueError(f"the bounds rule needs validation rows of {missing}: none were given")
    targets = {s: np.array([x.target_pos for x in samples[s]]) for s in SCENARIOS}
    inputs = {s: model.gate_inputs(head_scores[s], samples[s]) for s in SCENARIOS}
    cold = {s: model.cold_mask(samples[s]) for s in SCENARIOS}
    rows = samples["cold_item"]  # the text_overlap floor's ranking of the cold_item rows
    reference = overlap_hits(
        [s.history for s in rows],
        np.array([s.candidates for s in rows]),
        model.title_words,
        model.config.n_history,
        targets["cold_item"],
    )
    gate, figures = pick_gate(inputs, cold, targets, reference, points, bounds, seed, point)
    model.gate.copy_(gate)
    return {**gate_weights(model.config, gate), **figures}
