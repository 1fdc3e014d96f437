"""Does the bounds rule's choice of the count gate carry from validation rows to test rows, and does it with more
choice rows? Scored on the LLM-free gate (``cf_text_gate``: the run's stage-2 model's gate with the head weighed
0, ``llm.text_gate``), which costs no LLM pass, so every validation row can be read.

For each number of choice rows in ``--choice-rows`` (per scenario: the first rows of the ``overall``,
``cold_item`` and ``warm_item`` validation rows, as ``stage2.training.gate_valid_rows`` reads them), the point the
bounds rule (``llm.gate_bounds.pick_gate``, the run's ``stage2.training.gate_bounds``) picks among the 432
points that weigh the head 0, and that point's paired differences on every *test* row of the three scenarios
(95% paired bootstrap): what the choice promises and what it delivers. Also: how many points meet every bound on
the test rows (an oracle's count), and across all points the correlation of the ``warm_item`` − ``cf``
difference on the choice rows with the one on the test rows. Test rows are read to judge the choices, never to
make one.

    python bench/text_gate_transfer.py --out bench/results/text_gate_transfer_beauty.json
    python bench/text_gate_transfer.py --env video_games --out bench/results/text_gate_transfer_video_games.json

Prints one JSON line; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import emit, run_catalog, title_vector_frame

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.gate_bounds import (
    SCENARIOS,
    GateBounds,
    overlap_hits,
    pick_gate,
    validation_rows,
)
from allmrec_pipeline.llm.inputs import cf_logits, item_titles, title_vector_table, user_vectors
from allmrec_pipeline.llm.recommender import fuse_inputs
from allmrec_pipeline.llm.text_gate import TextGate
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.models.data import popularity_counts
from allmrec_pipeline.pipelines.evaluate_scenarios.scorers import target_positions


def _scored(gate, backbone, counts, rows):
    candidates = np.stack(rows["candidates"].to_numpy()).astype(np.int64)
    cf = cf_logits(backbone, user_vectors(backbone, list(rows["history"])), list(candidates))
    targets = target_positions(rows)
    return {
        "inputs": gate.inputs(list(rows["history"]), candidates, cf),
        "cold": gate.cold(counts[candidates]),
        "targets": targets,
        "overlap": overlap_hits(
            list(rows["history"]), candidates, gate.words, gate.config.n_history, targets
        ),
    }


def _hits(scored, point) -> np.ndarray:
    fused = fuse_inputs(scored["inputs"], scored["cold"], point).numpy()
    return metrics.scores_per_row(fused, scored["targets"], ("hit_at_1",))["hit_at_1"]


def _head(scored, n):
    return {k: v[:n] for k, v in scored.items()}


def _choose(scored, points, bounds, seed):
    """The bounds rule's choice on per-scenario scored rows: ``(the best point, its figures)``."""
    gate, figures = pick_gate(
        {s: r["inputs"] for s, r in scored.items()},
        {s: r["cold"] for s, r in scored.items()},
        {s: r["targets"] for s, r in scored.items()},
        scored["cold_item"]["overlap"],
        points,
        bounds,
        seed,
    )
    figures.pop("points_averaged")  # one point: the best
    return gate, figures


def _test_figures(test, point, cf_point, seed) -> dict:
    figures = {}
    for scenario in SCENARIOS:
        hits, cf = _hits(test[scenario], point), _hits(test[scenario], cf_point)
        stats = metrics.paired_bootstrap(hits, cf, seed=seed)
        figures[f"{scenario}_minus_cf"] = [round(stats[k], 4) for k in ("difference", "ci_low", "ci_high")]
        if scenario == "cold_item":
            stats = metrics.paired_bootstrap(hits, test[scenario]["overlap"], seed=seed)
            figures["cold_minus_text_overlap"] = [
                round(stats[k], 4) for k in ("difference", "ci_low", "ci_high")
            ]
        figures[f"{scenario}_rows"] = len(hits)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="the Kedro environment of the run (default: local)")
    parser.add_argument("--params", default="", help="kedro run --params style overrides")
    parser.add_argument("--choice-rows", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    catalog, _ = run_catalog(args.params, env=args.env)
    index = catalog.load("item_index")
    training = catalog.load("params:stage2")["training"]
    bounds = GateBounds(**training["gate_bounds"])
    vectors = title_vector_table(title_vector_frame(catalog), len(index)).numpy()
    gate = TextGate.from_checkpoint(
        catalog.load("stage2_model"), item_titles(catalog.load("items"), index), vectors
    )
    backbone = load_backbone(catalog.load("cf_model"), expected_n_items=len(index))
    counts = popularity_counts(catalog.load("item_popularity"), len(index))
    candidates = catalog.load("eval_candidates")
    valid = {
        s: _scored(gate, backbone, counts, validation_rows(candidates, s).reset_index(drop=True))
        for s in SCENARIOS
    }
    test_rows = {
        s: candidates[(candidates["scenario"] == s) & (candidates["split"] == "test")].reset_index(drop=True)
        for s in SCENARIOS
    }
    test = {s: _scored(gate, backbone, counts, rows) for s, rows in test_rows.items()}
    points = gate.points()
    choices = []
    for n in args.choice_rows:
        rows = {s: _head(valid[s], n) for s in SCENARIOS}
        best, figures = _choose(rows, points, bounds, args.seed)
        choices.append(
            {
                "choice_rows": {s: len(r["targets"]) for s, r in rows.items()},
                "weights": best.tolist(),
                "on_choice_rows": {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()},
                "on_test_rows": _test_figures(test, best, points[0], args.seed),
            }
        )
    # every point: warm_item - cf on the choice rows (the largest count) against the test rows
    n = max(args.choice_rows)
    warm_choice = _head(valid["warm_item"], n)
    cf_choice, cf_test = _hits(warm_choice, points[0]), _hits(test["warm_item"], points[0])
    warm_valid = [(_hits(warm_choice, p) - cf_choice).mean() for p in points]
    warm_test = [(_hits(test["warm_item"], p) - cf_test).mean() for p in points]
    test_best, test_figures = _choose(test, points, bounds, args.seed)
    emit(
        {
            "bench": "text_gate_transfer",
            "env": args.env or "local",
            "columns": gate.columns,
            "points": len(points),
            "bounds": training["gate_bounds"],
            "choices": choices,
            "test_points_meeting_every_bound": test_figures["points_meeting_every_bound"],
            "test_oracle_weights": test_best.tolist(),
            "test_oracle_smallest_slack": round(test_figures["smallest_slack"], 4),
            "warm_minus_cf_valid_vs_test_correlation": round(
                float(np.corrcoef(warm_valid, warm_test)[0, 1]), 3
            ),
            "warm_minus_cf_mean_valid_minus_test": round(float(np.mean(warm_valid) - np.mean(warm_test)), 4),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
