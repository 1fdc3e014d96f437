"""A fitted fusion instead of the gate's grid (docs/experiments.md, 2026-12-06, "a fitted fusion"): is the
LLM-free frontier on Video Games narrow because of the grid (a few weights, one pair per candidate group) or
because of the scores? Validation rows are drawn for every user outside the frozen rows (as
``many_choice_rows.py`` draws them) and scored by the CF model and the stage-2 checkpoint's text matcher; a
conditional logit (softmax over each row's 20 candidates) is fitted on them, over z(CF), z(text_overlap), z(text
matcher) per candidate group (cold: at most the gate's threshold), a cold intercept, and each of those times the
row's CF margin (its top z-score minus its second), with the cold targets' rows weighed so that they count
``--cold-weight`` times the rest in total. Judged on a ``bench/gate_frontier.py --cache-dir`` cache (the frozen
validation rows, other users, all of them: nothing is chosen on them), against ``cf``, ``text_overlap`` and the
LLM-free gate the bounds rule picks on the drawn rows. No test row is read.

    python bench/probes/fitted_fusion.py <cache dir> [--env video_games] > bench/results/probes/fitted_fusion_<env>.txt
"""
import sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _outside_rows import hits, interval, parser, validation_rows  # noqa: E402
from allmrec_pipeline.llm.gate_bounds import pick_gate
from allmrec_pipeline.llm.recommender import fuse_inputs

ap = parser()
ap.add_argument("--cold-weight", default="0,0.5,1,2")
args = ap.parse_args()
t0 = time.time()
run, group, X, cold, T = validation_rows(args.env, args.max_users)
T = torch.as_tensor(T)
S = ("overall", "cold_item", "warm_item")
B, SEED, tg = run.bounds, run.seed, run.text_gate
print(f"{len(T)} drawn rows ({int((group=='cold').sum())} cold targets) in {time.time()-t0:.0f} s; columns {tg.columns}")

def features(x, cm):
    g = cm.float()[..., None]
    top2 = x[..., 0].topk(2, dim=1).values
    m = (top2[:, 0] - top2[:, 1])[:, None, None].expand(-1, x.shape[1], 1)
    base = torch.cat([(1 - g) * x, g * x, g], -1)  # 7
    return torch.cat([base, base * m], -1)  # 14
F = features(X, cold)
def iv(x): return interval(x, SEED)
d = {s: dict(np.load(f"{args.cache}/{s}.npz")) for s in S}
free = {s: torch.from_numpy(d[s]["inputs"]).float()[..., [0, 2, 3]] for s in S}
cm = {s: torch.from_numpy(d[s]["cold"]) for s in S}
ov = {s: hits(d[s]["inputs"][..., 2], d[s]["targets"]) for s in S}
def report(name, score_fn):
    parts = []
    for s in S:
        t = d[s]["targets"]; h = hits(score_fn(s), t); base = hits(free[s][..., 0].numpy(), t)
        parts.append(f"{s[:4]} {h.mean():.3f} -cf {iv(h-base)}" + (f" -ov {iv(h-ov[s])}" if s == "cold_item" else ""))
    print(f"  {name}\n    " + "\n    ".join(parts))
idx = {"overall": np.arange(len(T)), "cold_item": np.flatnonzero(group == "cold"), "warm_item": np.flatnonzero(group == "warm")}
ref = hits(X[idx["cold_item"]][..., 1].numpy(), T[idx["cold_item"]].numpy())
g, f = pick_gate({s: X[idx[s]] for s in S}, {s: cold[idx[s]] for s in S}, {s: T[idx[s]].numpy() for s in S}, ref, tg.points(), B, SEED)
print(f"judged on every cache row {[len(d[s]['targets']) for s in S]}")
report(f"LLM-free grid gate, bounds rule on the drawn rows: {np.round(g.numpy(), 2).tolist()}", lambda s: fuse_inputs(free[s], cm[s], g).numpy())
is_cold_target = torch.as_tensor(group == "cold")
for cw in (float(x) for x in args.cold_weight.split(",")):
    w = torch.ones(len(T))
    if cw > 0:
        w[is_cold_target] = cw * (~is_cold_target).sum() / is_cold_target.sum()
    for use in ("plain", "margin"):
        k = 7 if use == "plain" else 14
        torch.manual_seed(SEED)
        theta = torch.zeros(k, requires_grad=True)
        with torch.no_grad(): theta[0] = 1.0; theta[3] = 1.0  # start at the CF model's ranking
        opt = torch.optim.LBFGS([theta], max_iter=200, line_search_fn="strong_wolfe")
        Fk = F[..., :k]
        def closure():
            opt.zero_grad()
            loss = (torch.nn.functional.cross_entropy(Fk @ theta, T, reduction="none") * w).sum() / w.sum() + 1e-4 * theta.pow(2).sum()
            loss.backward(); return loss
        opt.step(closure)
        th = theta.detach()
        report(f"fitted ({use}, cold targets x{cw:g} of the rest; 0: as drawn): {np.round(th.numpy(), 2).tolist()}",
               lambda s, th=th, k=k: (features(free[s], cm[s])[..., :k] @ th).numpy())
print(f"done in {time.time()-t0:.0f} s")
