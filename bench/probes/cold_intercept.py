"""A per-group intercept for cold candidates in the count gate (docs/experiments.md, 2026-12-06, "a cold
intercept"): on a ``bench/gate_frontier.py --cache-dir`` cache (every validation row of ``overall``, ``cold_item``
and ``warm_item`` scored by the run's stage-2 model), three folds of 300 choice rows per scenario (rows 0-299,
300-599, 600-899); the held-out rows are the rows of users in none of the fold's three choice sets. Per fold, the
shipped bounds rule (``llm.gate_bounds``: the largest smallest slack) picks among (a) the shipped grid, (b) the
grid crossed with a constant added to every cold candidate's fused score (the offsets below), (c) the shipped
grid's pick with the offset alone chosen after it. Judged on the held-out rows against ``cf`` (the grid's first
point), ``text_overlap`` (cold items) and (a). No test row is read.

    python bench/probes/cold_intercept.py /tmp/frontier_vg > bench/results/probes/cold_intercept_video_games.txt
    python bench/probes/cold_intercept.py /tmp/frontier_vg 0,-0.25,-0.5,-1,-1.5,-2,0.5 c   # (a) and (c) only
"""
import sys
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _outside_rows import hits, interval  # noqa: E402
from allmrec_pipeline.llm.gate_bounds import GateBounds, _slack_table
from allmrec_pipeline.llm.recommender import fuse_inputs
from allmrec_pipeline.llm.training import gate_points
cache = sys.argv[1]
OFFSETS = tuple(float(x) for x in (sys.argv[2].split(",") if len(sys.argv) > 2 else "0,-0.25,-0.5,-1,-1.5,-2,0.5".split(",")))
ONLY_C = len(sys.argv) > 3 and sys.argv[3] == "c"  # (a) and (c) only: (b) scores every offset of the grid
S = ("overall", "cold_item", "warm_item")
d = {s: dict(np.load(f"{cache}/{s}.npz")) for s in S}
for s in S:  # a constant column: weighed 0 for the other candidates, the offset for cold ones
    x = d[s]["inputs"].astype(np.float32)
    d[s]["inputs"] = np.concatenate([x, np.ones_like(x[..., :1])], -1)
base = [torch.cat([p, torch.zeros(2, 1)], 1) for p in gate_points(True, bool(d["overall"]["gate_cosine"]))]
def shift(p, o):
    q = p.clone(); q[1, -1] = o; return q
grid = [shift(p, o) for o in OFFSETS for p in base]  # offset-major: the first of equals has the offset 0
B = GateBounds(0.0, -0.02, 0.15, 0.0)
SEED = 42
ov = {s: hits(d[s]["inputs"][..., 2], d[s]["targets"]) for s in S}
def iv(x): return interval(x, SEED)
print(f"cache {cache}; offsets {OFFSETS}; rows per scenario {[len(d[s]['targets']) for s in S]}; shipped gate {d['overall']['gate'].tolist()}")
n = 300
pooled = {}
for fold in range(3):
    lo_, hi_ = fold * n, (fold + 1) * n
    if min(len(d[s]["targets"]) for s in S) < hi_:
        break
    ch = {s: slice(lo_, hi_) for s in S}
    users = np.concatenate([d[s]["users"][ch[s]] for s in S])
    held = {s: ~np.isin(d[s]["users"], users) for s in S}
    def pick(points, start=0):  # points[0] is the CF model's weighting, the reference; chosen from points[start:]
        tab = _slack_table({s: torch.from_numpy(d[s]["inputs"][ch[s]]).float() for s in S},
                           {s: torch.from_numpy(d[s]["cold"][ch[s]]) for s in S},
                           {s: d[s]["targets"][ch[s]] for s in S}, ov["cold_item"][ch["cold_item"]], points, B, SEED)
        i = start + int(np.argmax(tab["smallest_slack"][start:])); return points[i], float(tab["smallest_slack"][i])
    a, sa = pick(grid[: len(base)])
    b, sb = (a, sa) if ONLY_C else pick(grid)
    c, sc_ = pick([grid[0]] + [shift(a, o) for o in OFFSETS], start=1)
    print(f"fold {fold}: held-out rows {[int(held[s].sum()) for s in S]}")
    for name, g, sl in (("a shipped", a, sa), *(() if ONLY_C else (("b grid x offsets", b, sb),)), ("c offset after a", c, sc_)):
        line = []
        for s in S:
            k = held[s]; t = d[s]["targets"][k]
            inp = torch.from_numpy(d[s]["inputs"][k]).float(); cm = torch.from_numpy(d[s]["cold"][k])
            h = hits(fuse_inputs(inp, cm, g).numpy(), t); cf = hits(fuse_inputs(inp, cm, grid[0]).numpy(), t)
            ha = hits(fuse_inputs(inp, cm, a).numpy(), t)
            pooled.setdefault((name, s), []).append((h, cf, ha, ov[s][k]))
            line.append(f"{s[:4]} {h.mean():.3f} -cf {iv(h-cf)} -a {iv(h-ha)}" + (f" -ov {iv(h-ov[s][k])}" if s == "cold_item" else ""))
        print(f"  {name:17s} offset {float(g[1,-1]):+.2f} slack {sl:+.3f} weights {g[:, :-1].tolist()}\n    " + "\n    ".join(line))
print("pooled over the folds (a row held out in several folds counts once per fold)")
for (name, s), parts in pooled.items():
    h, cf, ha, o = (np.concatenate(x) for x in zip(*parts))
    print(f"  {name:17s} {s:9s} n={len(h)} {h.mean():.3f} -cf {iv(h-cf)} -a {iv(h-ha)}" + (f" -ov {iv(h-o)}" if s == "cold_item" else ""))
