"""Which rule for choosing the count gate among the grid's points carries best to validation rows it never saw?

Reads the three `bench/gate_frontier.py --cache-dir` files (every `overall`, `cold_item` and `warm_item` validation
row scored by the run's stage-2 model: z(CF), z(head), z(overlap), z(matcher)). For each fold, the rules choose a
point on a block of 300 rows of each scenario (fold k: rows 300k..300k+299) and the choice is judged on the
other rows (the twins' rows of the `overall` choice users left out, as gate_frontier does):

- `max_slack`: the point with the largest smallest slack against the run's gate_bounds (the shipped rule,
  `llm.gate_bounds.pick_gate`, called as stage 2 calls it);
- `centroid`: the mean of the weights of every point meeting every bound on the choice rows (`max_slack` when
  none does);
- `merit`: among the points meeting every bound, the largest mean Hit@1 over the three scenarios (`max_slack`
  when none does).

Per fold and rule: the four bound figures on the judged rows and the smallest slack; and each rule − `max_slack`
(paired Hit@1 difference per scenario, 95% paired bootstrap). No test row is read.

    python bench/probes/gate_choice_rules.py <cache dir> [--env video_games]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "bench")
from _common import run_catalog  # noqa: E402

from allmrec_pipeline import metrics  # noqa: E402
from allmrec_pipeline.llm.gate_bounds import GateBounds, pick_gate  # noqa: E402
from allmrec_pipeline.llm.recommender import fuse_inputs  # noqa: E402
from allmrec_pipeline.llm.training import gate_points  # noqa: E402

S = ("overall", "cold_item", "warm_item")
BLOCK = 300


def hits(inputs, cold, gate, targets):
    return metrics.scores_per_row(fuse_inputs(inputs, cold, gate).numpy(), targets, ("hit_at_1",))["hit_at_1"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cache", type=Path)
    parser.add_argument("--env", default=None)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    catalog, _ = run_catalog("", env=args.env)
    bounds = GateBounds(**catalog.load("params:stage2")["training"]["gate_bounds"])
    data = {s: dict(np.load(args.cache / f"{s}.npz", allow_pickle=False)) for s in S}
    X = {s: torch.from_numpy(data[s]["inputs"]) for s in S}
    C = {s: torch.from_numpy(data[s]["cold"]) for s in S}
    T = {s: data[s]["targets"] for s in S}
    points = gate_points(True, bool(data["overall"]["gate_cosine"]))
    overlap_only = torch.zeros_like(points[0])
    overlap_only[:, 2] = 1.0
    grid = {s: np.stack([hits(X[s], C[s], p, T[s]) for p in points]) for s in S}  # (P, N)
    overlap = {s: hits(X[s], C[s], overlap_only, T[s]) for s in S}
    n = min(len(T[s]) for s in S)
    out = {"cache": str(args.cache), "env": args.env or "local", "points": len(points), "folds": []}
    for fold in range(n // BLOCK):
        choose = {s: (np.arange(len(T[s])) // BLOCK) == fold for s in S}
        chosen_users = data["overall"]["users"][choose["overall"]]
        judge = {s: ~choose[s] for s in S}
        for s in ("cold_item", "warm_item"):
            judge[s] &= ~np.isin(data[s]["users"], chosen_users)
        sub = {s: torch.from_numpy(np.flatnonzero(choose[s])) for s in S}
        best_gate, figures = pick_gate(
            {s: X[s][sub[s]] for s in S},
            {s: C[s][sub[s]] for s in S},
            {s: T[s][choose[s]] for s in S},
            overlap["cold_item"][choose["cold_item"]],
            points,
            bounds,
            args.seed,
        )
        # every point's smallest slack on the choice rows, as pick_gate computes it
        h = {s: grid[s][:, choose[s]] for s in S}
        overall_low, _ = metrics.bootstrap_ci_rows(h["overall"] - h["overall"][0], args.seed)
        cold_low, _ = metrics.bootstrap_ci_rows(h["cold_item"] - overlap["cold_item"][choose["cold_item"]], args.seed)
        cold_cf = (h["cold_item"] - h["cold_item"][0]).mean(axis=1)
        _, warm_high = metrics.bootstrap_ci_rows(h["warm_item"] - h["warm_item"][0], args.seed)
        slack = np.minimum.reduce(
            [
                overall_low - bounds.overall_minus_cf,
                cold_low - bounds.cold_minus_text_overlap,
                cold_cf - bounds.cold_minus_cf,
                warm_high - bounds.warm_minus_cf,
            ]
        )
        best = int(np.argmax(slack))
        assert torch.equal(points[best], best_gate), "the probe's slack is not pick_gate's"
        meeting = np.flatnonzero(slack >= 0)
        merit = np.mean([h[s].mean(axis=1) for s in S], axis=0)
        stacked = torch.stack(points)
        rules = {
            "max_slack": points[best],
            "centroid": stacked[meeting].mean(0) if len(meeting) else points[best],
            "merit": points[meeting[np.argmax(merit[meeting])]] if len(meeting) else points[best],
        }
        judged = {}
        for rule, gate in rules.items():
            jh = {s: hits(X[s], C[s], gate, T[s])[judge[s]] for s in S}
            cf = {s: grid[s][0][judge[s]] for s in S}
            ov = metrics.paired_bootstrap(jh["cold_item"], overlap["cold_item"][judge["cold_item"]], seed=args.seed)
            d = {s: metrics.paired_bootstrap(jh[s], cf[s], seed=args.seed) for s in S}
            fig = {
                "gate": [[round(float(w), 4) for w in row] for row in gate],
                "hit_at_1": {s: round(float(jh[s].mean()), 4) for s in S},
                "overall_minus_cf": [round(d["overall"][k], 4) for k in ("difference", "ci_low", "ci_high")],
                "cold_minus_text_overlap": [round(ov[k], 4) for k in ("difference", "ci_low", "ci_high")],
                "cold_minus_cf": [round(d["cold_item"][k], 4) for k in ("difference", "ci_low", "ci_high")],
                "warm_minus_cf": [round(d["warm_item"][k], 4) for k in ("difference", "ci_low", "ci_high")],
            }
            fig["smallest_slack"] = round(
                min(
                    d["overall"]["ci_low"] - bounds.overall_minus_cf,
                    ov["ci_low"] - bounds.cold_minus_text_overlap,
                    d["cold_item"]["difference"] - bounds.cold_minus_cf,
                    d["warm_item"]["ci_high"] - bounds.warm_minus_cf,
                ),
                4,
            )
            if rule != "max_slack":
                base = judged["max_slack"]["_hits"]
                fig["minus_max_slack"] = {
                    s: [
                        round(v, 4)
                        for v in (
                            lambda r: (r["difference"], r["ci_low"], r["ci_high"])
                        )(metrics.paired_bootstrap(jh[s], base[s], seed=args.seed))
                    ]
                    for s in S
                }
            fig["_hits"] = jh
            judged[rule] = fig
        for fig in judged.values():
            del fig["_hits"]
        out["folds"].append(
            {
                "fold": fold,
                "choice_rows": {s: int(choose[s].sum()) for s in S},
                "judged_rows": {s: int(judge[s].sum()) for s in S},
                "points_meeting_every_bound": len(meeting),
                "choice_smallest_slack": round(float(slack[best]), 4),
                "rules": judged,
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
