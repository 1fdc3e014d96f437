"""Choose the count gate's LLM-free weights on many validation rows (docs/experiments.md, 2026-12-06, "many
choice rows"). The gate is chosen on 300 frozen validation rows per scenario because the LLM's head must score
them; its other inputs (z(CF), z(text_overlap), z(text matcher)) cost no LLM pass. Here validation rows are drawn
for every user outside the frozen rows (history: the training sequence; target: the next item, as the frozen
validation rows and stage 2's held_out targets are; 19 negatives drawn as split_sequences draws them; the twins by
the target's popularity group), scored by the run's CF model and the stage-2 checkpoint's text matcher
(``TextGate``), and the bounds rule (``pick_gate``) picks among the head-0 points on the first n rows of each
scenario. Judged on a ``bench/gate_frontier.py --cache-dir`` cache (the frozen validation rows, other users):
the LLM-free gates, and the head's two weights then chosen on the cache's first 300 rows with the text weights
fixed, judged on the cache's other rows. No test row is read.

    python bench/probes/many_choice_rows.py <cache dir> [--env video_games] > bench/results/probes/many_choice_rows_<env>.txt
"""
import sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _outside_rows import hits, interval, parser, validation_rows  # noqa: E402
from allmrec_pipeline.llm.gate_bounds import pick_gate
from allmrec_pipeline.llm.recommender import fuse_inputs
from allmrec_pipeline.llm.training import GATE_GRID

ap = parser()
ap.add_argument("--sizes", default="300,1000,3000,0")
args = ap.parse_args()
t0 = time.time()
run, group, X, cold, T = validation_rows(args.env, args.max_users)
S = ("overall", "cold_item", "warm_item")
B, SEED, tg, rows = run.bounds, run.seed, run.text_gate, run.users
print(f"{len(rows)} rows drawn ({int((group=='cold').sum())} cold targets, {int((group=='warm').sum())} warm) in {time.time()-t0:.0f} s; columns {tg.columns}; threshold {tg.config.gate_max_count}")
points = tg.points()
def iv(x): return interval(x, SEED)
idx = {"overall": np.arange(len(rows)), "cold_item": np.flatnonzero(group == "cold"), "warm_item": np.flatnonzero(group == "warm")}
d = {s: dict(np.load(f"{args.cache}/{s}.npz")) for s in S}
full_in = {s: torch.from_numpy(d[s]["inputs"]).float() for s in S}  # cf, head, overlap, matcher
free_in = {s: full_in[s][..., [0, 2, 3]] for s in S}
cm = {s: torch.from_numpy(d[s]["cold"]) for s in S}
ov = {s: hits(d[s]["inputs"][..., 2], d[s]["targets"]) for s in S}
ch = 300
chosen_users = np.concatenate([d[s]["users"][:ch] for s in S])
held = {s: ~np.isin(d[s]["users"], chosen_users) for s in S}
def judge(name, gate, inputs, slack=None):
    parts = []
    for s in S:
        k = held[s]; t = d[s]["targets"][k]
        h = hits(fuse_inputs(inputs[s][k], cm[s][k], gate).numpy(), t)
        base = hits(inputs[s][k][..., 0].numpy(), t)
        parts.append(f"{s[:4]} {h.mean():.3f} -cf {iv(h-base)}" + (f" -ov {iv(h-ov[s][k])}" if s == "cold_item" else ""))
    print(f"  {name}: {np.round(gate.numpy(), 2).tolist()}" + ("" if slack is None else f" slack {slack:+.3f}") + "\n    " + "\n    ".join(parts))
def head_choice(text_gate):
    """The head's weights (and the cold CF weight) with the text weights fixed, on the cache's first 300 rows."""
    pts = [torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])]
    for cold_cf, cold_head, warm_head in GATE_GRID:
        g = torch.zeros(2, 4); g[:, [0, 2, 3]] = text_gate; g[1, 0] = cold_cf; g[1, 1] = cold_head; g[0, 1] = warm_head
        if cold_cf != float(text_gate[1, 0]): continue
        pts.append(g)
    gate, fig = pick_gate({s: full_in[s][:ch] for s in S}, {s: cm[s][:ch] for s in S}, {s: d[s]["targets"][:ch] for s in S},
                          ov["cold_item"][:ch], pts, B, SEED)
    return gate, fig["smallest_slack"]
print(f"judged on the cache's held-out rows {[int(held[s].sum()) for s in S]} (users of none of its first {ch} rows per scenario)")
g, f = pick_gate({s: free_in[s][:ch] for s in S}, {s: cm[s][:ch] for s in S}, {s: d[s]["targets"][:ch] for s in S}, ov["cold_item"][:ch], points, B, SEED)
judge(f"LLM-free gate chosen on the cache's first {ch} rows per scenario (cf_text_gate's rule)", g, free_in, f["smallest_slack"])
judge("the run's shipped gate (its head included)", torch.from_numpy(d["overall"]["gate"]).float(), full_in)
for size in (int(x) for x in args.sizes.split(",")):
    take = {s: idx[s] if size == 0 else idx[s][:size] for s in S}
    Xi = {s: X[take[s]] for s in S}; Ci = {s: cold[take[s]] for s in S}; Ti = {s: T[take[s]] for s in S}
    ref = hits(X[take["cold_item"]][..., 1].numpy(), T[take["cold_item"]])
    g, f = pick_gate(Xi, Ci, Ti, ref, points, B, SEED)
    print(f"choice on drawn rows {[len(take[s]) for s in S]}: slack {f['smallest_slack']:+.3f}, points meeting every bound {f['points_meeting_every_bound']}")
    judge("LLM-free gate", g, free_in)
    hg, hs = head_choice(g)
    judge("with the head's weights chosen on the cache's first 300", hg, full_in, hs)
print(f"done in {time.time()-t0:.0f} s")
