"""Does the count gate need a warm row that can weigh the text above the CF model? (2026-12-07)

The gate's grid (``llm.training.gate_points``) fixes z(CF)'s weight for warm candidates at 1 and lets the text
inputs reach at most 0.5 there: on a set where the CF model is weak the gate cannot follow the text on warm
items. This probe scores the run's stage-2 model on the choice rows (the first ``gate_valid_rows`` validation rows
of ``overall``, ``cold_item``, ``warm_item``) and on every test row of ``overall``, ``cold_item``, ``warm_item``,
``cold_user``; picks a gate with stage 2's own rule (``llm.gate_bounds.pick_gate`` with the run's bounds, ``best``) from the
shipped grid and from the grid with the warm row's z(CF) weight also 0.5 and 0, and from the shipped grid by the
``centroid`` and ``merit`` points, and with the overall and warm bounds read against the best single input
instead of z(CF) (``floor-referenced``); and prints
each gate's test Hit@1 and paired differences (95% paired bootstrap) against ``cf`` (the grid's first point),
against the matcher alone and against the shipped-grid choice. The run's own gate (chosen on the warm-up's
features) is printed too, as the check that these scores are the pipeline's.

    python bench/probes/warm_text_grid.py [--env gift_cards] [--cache-dir DIR]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "bench")
from _common import run_catalog  # noqa: E402
from gate_rules import _hits, _score  # noqa: E402

from allmrec_pipeline import metrics  # noqa: E402
from allmrec_pipeline.llm.gate_bounds import GateBounds, pick_gate  # noqa: E402
from allmrec_pipeline.llm.training import gate_points  # noqa: E402

CHOICE = ("overall", "cold_item", "warm_item")
TEST = ("overall", "cold_item", "warm_item", "cold_user")


def scores(args, scenario, split, max_rows=None):
    path = args.cache_dir / f"{split}_{scenario}.npz" if args.cache_dir else None
    if path is not None and path.exists():
        return dict(np.load(path))
    inputs, cold, targets, _, gate, n_choose, *_ = _score(args, scenario, split, max_rows)
    out = {"inputs": inputs.numpy(), "cold": cold.numpy(), "targets": targets, "gate": gate.numpy(),
           "n_choose": np.int64(n_choose)}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
    return out


def floor_referenced(X, C, T, reference, grid, singles, bounds, seed):
    """The bounds rule with the overall and warm_item bounds' reference the best single input on the choice rows
    (z(CF), the head, the overlap or the matcher alone) instead of z(CF) alone: the gate with the largest smallest
    slack (cold_item − cf still against z(CF))."""
    hits = {s: np.stack([_hits(X[s], C[s], g, T[s]) for g in grid]) for s in CHOICE}
    alone = {s: np.stack([_hits(X[s], C[s], g, T[s]) for g in singles]) for s in CHOICE}
    best_alone = {s: alone[s][int(np.argmax(alone[s].mean(1)))] for s in ("overall", "warm_item")}
    overall_low, _ = metrics.bootstrap_ci_rows(hits["overall"] - best_alone["overall"], seed)
    cold_low, _ = metrics.bootstrap_ci_rows(hits["cold_item"] - reference, seed)
    cold_cf = (hits["cold_item"] - hits["cold_item"][0]).mean(1)
    _, warm_high = metrics.bootstrap_ci_rows(hits["warm_item"] - best_alone["warm_item"], seed)
    slack = np.minimum.reduce([
        overall_low - bounds.overall_minus_cf, cold_low - bounds.cold_minus_text_overlap,
        cold_cf - bounds.cold_minus_cf, warm_high - bounds.warm_minus_cf,
    ])
    best = int(np.argmax(slack))
    names = ("cf", "head", "overlap", "matcher")
    chosen = {s: names[int(np.argmax(alone[s].mean(1)))] for s in ("overall", "warm_item")}
    return grid[best].clone(), int((slack >= 0).sum()), float(slack[best]), chosen


def paired(a, b, seed):
    f = metrics.paired_bootstrap(a, b, seed=seed)
    return f"{f['difference']:+.3f} [{f['ci_low']:+.3f}, {f['ci_high']:+.3f}]"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default=None)
    parser.add_argument("--params", default="")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache-dir", type=Path)
    args = parser.parse_args()
    catalog, _ = run_catalog(args.params, env=args.env)
    training = catalog.load("params:stage2")["training"]
    bounds = GateBounds(**training["gate_bounds"])
    valid = {s: scores(args, s, "valid", int(training["gate_valid_rows"])) for s in CHOICE}
    test = {s: scores(args, s, "test") for s in TEST}
    n = int(valid["overall"]["n_choose"])
    shipped = gate_points(True, True)
    widened = shipped + [p.clone() for p in shipped] + [p.clone() for p in shipped]
    for k, p in enumerate(widened):
        p[0, 0] = (1.0, 0.5, 0.0)[k // len(shipped)]
    X = {s: torch.from_numpy(v["inputs"][:n]) for s, v in valid.items()}
    C = {s: torch.from_numpy(v["cold"][:n]) for s, v in valid.items()}
    T = {s: v["targets"][:n] for s, v in valid.items()}
    singles = [torch.zeros_like(shipped[0]) for _ in range(4)]  # each input alone: cf, head, overlap, matcher
    for k, g in enumerate(singles):
        g[:, k] = 1.0
    head_only, overlap_only, matcher_only = singles[1:]
    reference = _hits(X["cold_item"], C["cold_item"], overlap_only, T["cold_item"])
    gates = {"run's own gate": torch.from_numpy(valid["overall"]["gate"])}
    rules = [("shipped grid", shipped, "best"), ("warm z(CF) also 0.5, 0", widened, "best"),
             ("shipped grid, centroid", shipped, "centroid"), ("shipped grid, merit", shipped, "merit"),
             ("warm z(CF) also 0.5, 0, merit", widened, "merit")]
    for name, grid, rule in rules:
        gate, figures = pick_gate(X, C, T, reference, grid, bounds, args.seed, rule)
        gates[name] = gate
        print(f"{name}: {len(grid)} points, {figures['points_meeting_every_bound']} meet every bound on "
              f"{len(T['overall'])}/{len(T['cold_item'])}/{len(T['warm_item'])} choice rows; smallest slack "
              f"{figures['smallest_slack']:+.3f}; gate {gate.tolist()}")
    gate, meeting, slack, alone = floor_referenced(X, C, T, reference, shipped, singles, bounds, args.seed)
    gates["shipped grid, floor-referenced bounds"] = gate
    print(f"shipped grid, floor-referenced bounds (best alone: {alone}): {meeting} meet every bound; smallest "
          f"slack {slack:+.3f}; gate {gate.tolist()}")
    print(f"test rows (env {args.env or 'base'}):")
    for s in TEST:
        x, c, t = torch.from_numpy(test[s]["inputs"]), torch.from_numpy(test[s]["cold"]), test[s]["targets"]
        cf = _hits(x, c, shipped[0], t)
        matcher = _hits(x, c, matcher_only, t)
        base = _hits(x, c, gates["shipped grid"], t)
        head = _hits(x, c, head_only, t)
        print(f"  {s} (n={len(t)}): cf {cf.mean():.3f}, matcher alone {matcher.mean():.3f}, head alone "
              f"{head.mean():.3f}")
        for name, gate in gates.items():
            h = _hits(x, c, gate, t)
            extra = "" if name in ("run's own gate", "shipped grid") else f"; − shipped grid {paired(h, base, args.seed)}"
            print(f"    {name}: {h.mean():.3f}; − cf {paired(h, cf, args.seed)}; − matcher "
                  f"{paired(h, matcher, args.seed)}{extra}")


if __name__ == "__main__":
    main()
