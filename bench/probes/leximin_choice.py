"""The count gate's choice rule with leximin tie-breaking (docs/experiments.md, 2026-12-06, "where Video Games' warm
items lose"): on a ``bench/gate_frontier.py --cache-dir`` cache, three folds of 300 choice rows per validation twin
(rows 0-299, 300-599, 600-899; the twins' rows of the choice users held out), the shipped rule (the largest smallest
slack against the issue's bounds, ``llm.gate_bounds``) against the point, among those within delta of that
smallest slack, with the largest second-smallest slack (then third, fourth), judged on the held-out rows.

    python bench/probes/leximin_choice.py /tmp/frontier_beauty > bench/results/probes/leximin_choice_beauty.txt
    python bench/probes/leximin_choice.py /tmp/frontier_vg > bench/results/probes/leximin_choice_video_games.txt
"""
import sys
import numpy as np, torch
from allmrec_pipeline import metrics
from allmrec_pipeline.llm.gate_bounds import GateBounds, _slack_table
from allmrec_pipeline.llm.recommender import fuse_inputs
from allmrec_pipeline.llm.training import gate_points
cache = sys.argv[1]
S = ("overall", "cold_item", "warm_item")
d = {s: dict(np.load(f"{cache}/{s}.npz")) for s in S}
grid = gate_points(True, bool(d["overall"]["gate_cosine"]))
B = GateBounds(0.0, -0.02, 0.15, 0.0)
def hits(sc, t): return metrics.scores_per_row(sc, t, ("hit_at_1",))["hit_at_1"]
ov = {s: hits(d[s]["inputs"][..., 2], d[s]["targets"]) for s in S}
def iv(x):
    lo, hi = metrics.bootstrap_ci_rows(x[None], 0); return f"{x.mean():+.3f} [{lo[0]:+.3f}, {hi[0]:+.3f}]"
n = 300
for fold in range(3):
    lo_, hi_ = fold * n, (fold + 1) * n
    chosen_users = d["overall"]["users"][lo_:hi_]
    ch = {s: slice(lo_, hi_) for s in S}
    held = {}
    for s in S:
        k = np.ones(len(d[s]["targets"]), bool); k[lo_:hi_] = False
        if s != "overall": k &= ~np.isin(d[s]["users"], chosen_users)
        held[s] = k
    tab = _slack_table({s: torch.from_numpy(d[s]["inputs"][ch[s]]).float() for s in S},
                       {s: torch.from_numpy(d[s]["cold"][ch[s]]) for s in S},
                       {s: d[s]["targets"][ch[s]] for s in S}, ov["cold_item"][ch["cold_item"]], grid, B, 0)
    slacks = np.stack([tab["overall_minus_cf_ci_low"] - B.overall_minus_cf,
                       tab["cold_minus_text_overlap_ci_low"] - B.cold_minus_text_overlap,
                       tab["cold_minus_cf"] - B.cold_minus_cf,
                       tab["warm_minus_cf_ci_high"] - B.warm_minus_cf], 1)
    srt = np.sort(slacks, 1)
    best = int(np.argmax(srt[:, 0]))
    picks = {"best": best}
    for delta in (0.005, 0.01, 0.02):
        near = np.flatnonzero(srt[:, 0] >= srt[best, 0] - delta)
        # leximin within delta: the largest second-smallest, then third...
        order = np.lexsort(tuple(srt[near, k] for k in range(3, 0, -1)))
        picks[f"leximin{delta}"] = int(near[order[-1]])
    print(f"fold {fold}: best smallest slack {srt[best,0]:+.3f}")
    for name, i in picks.items():
        line = []
        for s in S:
            k = held[s]; t = d[s]["targets"][k]
            inp = torch.from_numpy(d[s]["inputs"][k]).float(); c = torch.from_numpy(d[s]["cold"][k])
            h = hits(fuse_inputs(inp, c, grid[i]).numpy(), t); cf = hits(fuse_inputs(inp, c, grid[0]).numpy(), t)
            line.append(f"{s[:4]} -cf {iv(h-cf)}" + (f" -ov {iv(h-ov[s][k])}" if s == "cold_item" else ""))
        print(f"  {name:12s} slacks {np.round(slacks[i],3).tolist()} | " + " | ".join(line))
