"""The count gate with a fifth input for cold candidates (docs/experiments.md, 2026-12-06, "where Video Games' warm
items lose"): z(a text matcher fitted on transitions to rarely bought items), weighed 0, 0.5, 1 or 2 for cold
candidates and 0 for the rest, beside the run's four inputs. On a ``bench/gate_frontier.py --cache-dir`` cache and
the rare-item matcher's validation scores (``SAVE=<dir> bench/probes/matcher_offline.py <env> max 64 1500 10``):
the bounds rule (``llm.gate_bounds.pick_gate``) on the first 300 rows of each twin, judged on the held-out rows,
and the oracle's frontier there, with four and with five inputs. About 10 minutes on 2 cores.

    SAVE=/tmp/rare_vg python bench/probes/matcher_offline.py video_games max 64 1500 10
    python bench/probes/rare_matcher_column.py /tmp/frontier_vg /tmp/rare_vg
"""
import sys, time
import numpy as np, torch
from allmrec_pipeline import metrics
from allmrec_pipeline.llm.gate_bounds import GateBounds, _slack_table, pick_gate
from allmrec_pipeline.llm.recommender import fuse_inputs
from allmrec_pipeline.llm.training import gate_points
from allmrec_pipeline.text_floors import zscore_rows
cache, rare_dir = sys.argv[1], sys.argv[2]
S = ("overall", "cold_item", "warm_item")
d = {s: dict(np.load(f"{cache}/{s}.npz")) for s in S}
for s in S:
    r = np.load(f"{rare_dir}/{s}.npy")[: len(d[s]["targets"])]
    d[s]["inputs5"] = np.concatenate([d[s]["inputs"], zscore_rows(r.astype(np.float32))[..., None]], -1)
base = gate_points(True, True)
RARE = (0.0, 0.5, 1.0, 2.0)
grid5 = [torch.cat([p, torch.tensor([[0.0], [w]])], 1) for p in base for w in RARE]
grid4 = [torch.cat([p, torch.zeros(2, 1)], 1) for p in base]
n = 300
chosen = d["overall"]["users"][:n]
held = {}
for s in S:
    k = np.arange(len(d[s]["targets"])) >= n
    if s != "overall": k &= ~np.isin(d[s]["users"], chosen)
    held[s] = k
def hits(sc, t): return metrics.scores_per_row(sc, t, ("hit_at_1",))["hit_at_1"]
ov = {s: hits(d[s]["inputs"][..., 2], d[s]["targets"]) for s in S}
def iv(x):
    lo, hi = metrics.bootstrap_ci_rows(x[None], 0); return f"{x.mean():+.3f} [{lo[0]:+.3f}, {hi[0]:+.3f}]"
B = GateBounds(0.0, -0.02, 0.15, 0.0)
for name, grid in (("4 columns", grid4), ("5 columns", grid5)):
    t0 = time.time()
    first = slice(0, n)
    point, fig = pick_gate({s: torch.from_numpy(d[s]["inputs5"][first]).float() for s in S},
                           {s: torch.from_numpy(d[s]["cold"][first]) for s in S},
                           {s: d[s]["targets"][first] for s in S}, ov["cold_item"][first], grid, B, 0)
    print(f"{name}: choice slack {fig['smallest_slack']:+.3f} admissible {fig['points_meeting_every_bound']} gate {point.tolist()} ({time.time()-t0:.0f}s)")
    for s in S:
        k = held[s]; t = d[s]["targets"][k]
        inp = torch.from_numpy(d[s]["inputs5"][k]).float(); c = torch.from_numpy(d[s]["cold"][k])
        h = hits(fuse_inputs(inp, c, point).numpy(), t); cf = hits(fuse_inputs(inp, c, grid[0]).numpy(), t)
        print(f"   {s:9s} n={k.sum()} {h.mean():.3f} -cf {iv(h-cf)} -ov {iv(h-ov[s][k])}")
    tab = _slack_table({s: torch.from_numpy(d[s]["inputs5"][held[s]]).float() for s in S},
                       {s: torch.from_numpy(d[s]["cold"][held[s]]) for s in S},
                       {s: d[s]["targets"][held[s]] for s in S}, ov["cold_item"][held["cold_item"]], grid, B, 0)
    i = int(np.argmax(tab["smallest_slack"]))
    print(f"   oracle on held-out: {(tab['smallest_slack']>=0).sum()} of {len(grid)} meet every bound; best slack {tab['smallest_slack'][i]:+.3f} "
          f"warm_hi {tab['warm_minus_cf_ci_high'][i]:+.3f} cold_ov_lo {tab['cold_minus_text_overlap_ci_low'][i]:+.3f} overall_lo {tab['overall_minus_cf_ci_low'][i]:+.3f} gate {grid[i].tolist()}")
