"""Does an item co-occurrence score lift warm candidates above the CF model? (2026-12-07)

The 2026-12-05 search found next-item co-occurrence in the training sequences weak on cold targets and strong on
warm ones (Video Games warm validation twins 0.537, SASRec 0.610), and left it out. This probe adds
z(log1p(co-occurrence)) as a fifth gate input beside the run's four (z(CF), z(head), z(overlap), z(matcher)),
read from ``warm_text_grid.py``'s cache of the same rows: first z(CF) + w z(cooc) against ``cf`` on the choice
rows and on every test row, then the gate picked by stage 2's own rule (``pick_gate``, ``best``) from the
shipped grid crossed with co-occurrence weights for warm and cold candidates, scored on the test rows.

    python bench/probes/cooc_column.py --env video_games --cache-dir /tmp/s29/wtg_vg
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "bench")
from _common import run_catalog  # noqa: E402
from gate_rules import _hits, _valid_rows  # noqa: E402

from allmrec_pipeline import metrics  # noqa: E402
from allmrec_pipeline.llm.gate_bounds import GateBounds, pick_gate  # noqa: E402
from allmrec_pipeline.llm.recommender import zscore  # noqa: E402
from allmrec_pipeline.llm.training import gate_points  # noqa: E402

CHOICE = ("overall", "cold_item", "warm_item")
TEST = ("overall", "cold_item", "warm_item", "cold_user")


def cooc_table(sequences, window, backward):
    """item -> {next item: weight}: each later item within ``window`` positions counts 1, each earlier one
    ``backward``."""
    table = {}
    for seq in sequences:
        seq = [int(i) for i in seq if int(i) != 0]
        for i, a in enumerate(seq):
            row = table.setdefault(a, {})
            for b in seq[i + 1 : i + 1 + window]:
                row[b] = row.get(b, 0.0) + 1.0
            if backward:
                for b in seq[max(0, i - window) : i]:
                    row[b] = row.get(b, 0.0) + backward
    return table


def cooc_scores(rows, table, n_history, decay):
    out = np.zeros((len(rows), len(rows["candidates"].iloc[0])), dtype=np.float32)
    for r, (history, cands) in enumerate(zip(rows["history"], rows["candidates"], strict=True)):
        recent = [int(i) for i in history if int(i) != 0][-n_history:]
        for k, a in enumerate(reversed(recent)):
            row = table.get(a)
            if not row:
                continue
            for j, c in enumerate(cands):
                out[r, j] += row.get(int(c), 0.0) * decay**k
    return out


def paired(a, b, seed):
    f = metrics.paired_bootstrap(a, b, seed=seed)
    return f"{f['difference']:+.3f} [{f['ci_low']:+.3f}, {f['ci_high']:+.3f}]"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default=None)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--window", type=int, default=3)
    parser.add_argument("--backward", type=float, default=0.5)
    parser.add_argument("--decay", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    catalog, _ = run_catalog("", env=args.env)
    stage2 = catalog.load("params:stage2")
    bounds = GateBounds(**stage2["training"]["gate_bounds"])
    n_history = int(stage2["model"]["n_history"])
    table = cooc_table(catalog.load("train_sequences")["items"], args.window, args.backward)
    candidates = catalog.load("eval_candidates")

    def load(split, scenario):
        cache = dict(np.load(args.cache_dir / f"{split}_{scenario}.npz"))
        rows = _valid_rows(candidates, scenario, split).head(len(cache["targets"]))
        co = torch.from_numpy(np.log1p(cooc_scores(rows, table, n_history, args.decay)))
        x = torch.from_numpy(cache["inputs"])
        x = torch.cat([x, zscore(co).unsqueeze(-1)], dim=-1)
        return x, torch.from_numpy(cache["cold"]), cache["targets"], torch.from_numpy(cache["gate"])

    valid = {s: load("valid", s) for s in CHOICE}
    test = {s: load("test", s) for s in TEST}
    zero = torch.zeros(2, 5)
    cf_only = zero.clone()
    cf_only[:, 0] = 1
    print(f"env {args.env or 'base'}; window {args.window}, backward {args.backward}, decay {args.decay}")
    for name, data in (("choice rows", valid), ("test rows", test)):
        print(name)
        for s, (x, c, t, _) in data.items():
            cf = _hits(x, c, cf_only, t)
            alone = zero.clone()
            alone[:, 4] = 1
            line = [f"  {s} (n={len(t)}): cf {cf.mean():.3f}, cooc alone {_hits(x, c, alone, t).mean():.3f}"]
            for w in (0.1, 0.25, 0.5):
                g = cf_only.clone()
                g[0, 4] = w  # warm candidates only
                h = _hits(x, c, g, t)
                line.append(f"z(CF)+{w} z(cooc) on warm: {h.mean():.3f} − cf {paired(h, cf, args.seed)}")
            print("; ".join(line))
    shipped = gate_points(True, True)
    n = len(valid["overall"][2])
    X = {s: v[0] for s, v in valid.items()}
    C = {s: v[1] for s, v in valid.items()}
    T = {s: v[2] for s, v in valid.items()}
    overlap_only = zero.clone()
    overlap_only[:, 2] = 1
    reference = _hits(X["cold_item"], C["cold_item"], overlap_only, T["cold_item"])
    base_grid = [torch.cat([p, torch.zeros(2, 1)], dim=1) for p in shipped]
    grid = []
    for warm_w in (0.0, 0.25, 0.5, 1.0):
        for cold_w in (0.0, 0.5):
            for p in base_grid:
                q = p.clone()
                q[0, 4], q[1, 4] = warm_w, cold_w
                grid.append(q)
    gates = {}
    for name, points in (("shipped grid", base_grid), ("with cooc", grid)):
        gate, figures = pick_gate(X, C, T, reference, points, bounds, args.seed, "best")
        gates[name] = gate
        print(f"{name}: {len(points)} points, {figures['points_meeting_every_bound']} meet every bound on {n} "
              f"choice rows each; smallest slack {figures['smallest_slack']:+.3f}; gate {gate.tolist()}")
    print("test rows:")
    for s, (x, c, t, _) in test.items():
        cf = _hits(x, c, cf_only, t)
        base = _hits(x, c, gates["shipped grid"], t)
        h = _hits(x, c, gates["with cooc"], t)
        over = _hits(x, c, overlap_only, t)
        print(f"  {s} (n={len(t)}): shipped {base.mean():.3f} − cf {paired(base, cf, args.seed)}; with cooc "
              f"{h.mean():.3f} − cf {paired(h, cf, args.seed)}, − shipped {paired(h, base, args.seed)}, − overlap "
              f"{paired(h, over, args.seed)}")


if __name__ == "__main__":
    main()
