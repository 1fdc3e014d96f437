"""The count gate's cold threshold on a small set (docs/experiments.md, 2026-12-06, "the gate's cold threshold on the
small 5-core set"): on a ``bench/gate_frontier.py --cache-dir`` cache, the candidates' cold flags recomputed at each
threshold (at most that many training interactions), the shipped rule (``llm.gate_bounds.pick_gate``, best) choosing
on three folds of 300 rows per validation twin (the twins' rows of the fold's overall users held out) and judged on
the rest; and the oracle's frontier on fold 0's held-out rows (grid points meeting every bound).

    python bench/probes/cold_threshold.py small_unseen /tmp/frontier_small 3 4 5 > bench/results/probes/...txt
"""
import glob, sys
import numpy as np, pandas as pd, torch
from allmrec_pipeline import metrics
from allmrec_pipeline.llm.gate_bounds import GateBounds, _slack_table, pick_gate
from allmrec_pipeline.llm.recommender import fuse_inputs
from allmrec_pipeline.llm.training import gate_points
ds, cache = sys.argv[1], sys.argv[2]
S = ("overall", "cold_item", "warm_item")
pop = pd.read_parquet(sorted(glob.glob(f"data/05_model_input/{ds}/item_popularity.parquet/*/*.parquet"))[-1])
counts = np.zeros(int(pop.item_idx.max()) + 1, dtype=np.int64); counts[pop.item_idx] = pop["count"]
ec = pd.read_parquet(sorted(glob.glob(f"data/05_model_input/{ds}/eval_candidates.parquet/*/*.parquet"))[-1])
d = {s: dict(np.load(f"{cache}/{s}.npz")) for s in S}
cands = {}
for s in S:
    rows = ec[(ec.scenario == s) & (ec.split == "valid")].reset_index(drop=True)
    C = np.stack(rows.candidates.to_numpy()); t = rows.target_item_idx.to_numpy()
    assert len(C) == len(d[s]["targets"]) and ((C == t[:, None]).argmax(1) == d[s]["targets"]).all()
    assert (d[s]["cold"] == (counts[C] <= 5)).all()
    cands[s] = C
    print(f"{s}: {len(C)} validation rows")
share = {thr: float((counts[1:] <= thr).mean()) for thr in range(0, 8)}
print("share of items with at most k training interactions:", {k: round(v, 2) for k, v in share.items()})
pts = gate_points(True, bool(d["overall"]["gate_cosine"]))
B = GateBounds(0.0, -0.02, 0.15, 0.0)
def hits(sc, t): return metrics.scores_per_row(sc, t, ("hit_at_1",))["hit_at_1"]
def iv(x):
    lo, hi = metrics.bootstrap_ci_rows(x[None], 0); return f"{x.mean():+.3f} [{lo[0]:+.3f}, {hi[0]:+.3f}]"
n = 300
for thr in [int(x) for x in sys.argv[3:]]:
    cold = {s: counts[cands[s]] <= thr for s in S}
    print(f"threshold {thr}: {share[thr]:.0%} of items cold")
    for fold in range(3):
        lo_, hi_ = fold * n, (fold + 1) * n
        users = d["overall"]["users"][lo_:hi_]
        held = {}
        for s in S:
            k = np.ones(len(d[s]["targets"]), bool); k[lo_:hi_] = False
            if s != "overall": k &= ~np.isin(d[s]["users"], users)
            held[s] = k
        sl = {s: slice(lo_, hi_) for s in S}
        ov_choice = hits(d["cold_item"]["inputs"][sl["cold_item"], :, 2], d["cold_item"]["targets"][sl["cold_item"]])
        gate, fig = pick_gate({s: torch.from_numpy(d[s]["inputs"][sl[s]]).float() for s in S},
                              {s: torch.from_numpy(cold[s][sl[s]]) for s in S},
                              {s: d[s]["targets"][sl[s]] for s in S}, ov_choice, pts, B, 0)
        line = []
        for s in S:
            k = held[s]; t = d[s]["targets"][k]
            inp = torch.from_numpy(d[s]["inputs"][k]).float(); c = torch.from_numpy(cold[s][k])
            h = hits(fuse_inputs(inp, c, gate).numpy(), t); cf = hits(d[s]["inputs"][k][..., 0], t)
            line.append(f"{s} n={int(k.sum())} -cf {iv(h - cf)}" + (f" -overlap {iv(h - hits(d[s]['inputs'][k][..., 2], t))}" if s == "cold_item" else ""))
        print(f"  fold {fold}: gate {np.round(gate.numpy(), 2).tolist()} smallest slack on its choice rows {fig['smallest_slack']:+.3f} ({fig['points_meeting_every_bound']} points meet every bound there)")
        print("     " + " | ".join(line))
    k = {s: np.arange(len(d[s]["targets"])) >= n for s in S}
    users = d["overall"]["users"][:n]
    for s in ("cold_item", "warm_item"): k[s] &= ~np.isin(d[s]["users"], users)
    ov = hits(d["cold_item"]["inputs"][k["cold_item"], :, 2], d["cold_item"]["targets"][k["cold_item"]])
    tab = _slack_table({s: torch.from_numpy(d[s]["inputs"][k[s]]).float() for s in S},
                       {s: torch.from_numpy(cold[s][k[s]]) for s in S}, {s: d[s]["targets"][k[s]] for s in S}, ov, pts, B, 0)
    print(f"  oracle on fold 0's held-out rows: {(tab['smallest_slack'] >= 0).sum()} of {len(pts)} points meet every bound, the largest smallest slack {tab['smallest_slack'].max():+.3f}")
