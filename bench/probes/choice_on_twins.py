"""Stage 2's nested gate choice emulated on a `bench/gate_frontier.py` cache (four input columns), with the cold
half of the merit read either on the ~27 cold targets among the 300 overall choice rows (`orig`, the rule in
`llm.training.choose_gate`) or on the first 300 `cold_item` validation-twin rows (`twin`); paired differences on
the held-out twin rows (users of the choice rows left out).

    python bench/probes/choice_on_twins.py <cache dir> {orig|twin}
"""
import sys, numpy as np, torch
sys.path.insert(0, "bench")
from gate_rules import _hits
from allmrec_pipeline.llm.training import COSINE_GRID, gate_points
from allmrec_pipeline import metrics
cache = sys.argv[1]; NCH = 300; mode = sys.argv[2]  # "twin" or "orig"
S = ("overall", "cold_item", "warm_item")
D = {s: dict(np.load(f"{cache}/{s}.npz")) for s in S}
X = {s: torch.from_numpy(D[s]["inputs"]) for s in S}; C = {s: torch.from_numpy(D[s]["cold"]) for s in S}
T = {s: D[s]["targets"] for s in S}
o = D["overall"]; n = len(o["targets"]); ch = np.arange(n) < NCH
coldt = o["cold"][np.arange(n), o["targets"]]
chc = np.arange(len(T["cold_item"])) < NCH
def fig(p):
    h = _hits(X["overall"], C["overall"], p, T["overall"])[ch]
    cold = _hits(X["cold_item"], C["cold_item"], p, T["cold_item"])[chc].mean() if mode == "twin" else h[coldt[ch]].mean()
    return h.mean(), cold, h[~coldt[ch]].mean()
base = [torch.cat([p, torch.zeros(2, 1)], 1) for p in gate_points(True)]
tab = [(p, fig(p)) for p in base]; floor = tab[0][1][2]
best = lambda es: max([e for e in es if e[1][2] >= floor], key=lambda e: (e[1][0] + e[1][1]) / 2)
g, _ = best(tab); first = g.clone()
w = []
for wc, cc in COSINE_GRID:
    q = g.clone(); q[0, -1], q[1, -1] = wc, cc; w.append(q)
g, f = best([(p, fig(p)) for p in w])
print(mode, "chosen", g.tolist())
chosen_users = np.concatenate([o["users"][:NCH]] + ([D["cold_item"]["users"][:NCH]] if mode == "twin" else []))
ov = torch.zeros(2, 4); ov[:, 2] = 1
for s in S:
    ho = np.arange(len(T[s])) >= NCH
    ho &= ~np.isin(D[s]["users"], chosen_users) if s != "overall" else ~np.isin(D[s]["users"], D["cold_item"]["users"][:NCH] if mode == "twin" else [])
    h = _hits(X[s], C[s], g, T[s])[ho]
    refs = {"cf": _hits(X[s], C[s], tab[0][0], T[s])[ho], "overlap": _hits(X[s], C[s], ov, T[s])[ho], "nocos": _hits(X[s], C[s], first, T[s])[ho]}
    out = f"{s:10s} n={ho.sum()} model {h.mean():.3f}"
    for k, r in refs.items():
        p = metrics.paired_bootstrap(h, r, seed=42)
        out += f" | -{k}({r.mean():.3f}) {p['difference']:+.3f} [{p['ci_low']:+.3f},{p['ci_high']:+.3f}]"
    print(out)
