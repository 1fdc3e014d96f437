"""What stage 2's own choice rule (``llm.training.choose_gate``'s merit on the first 300 ``overall`` validation rows)
picks from the count gate's grid with and without the title cosine as a fourth input, scored on the held-out rows
of ``bench/gate_frontier.py`` (its ``--cache-dir`` after a ``--cosine`` call).

    python bench/probes/choice_rule_cosine.py <gate_frontier cache dir>
"""

import sys
from pathlib import Path

import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gate_rules import _hits
from allmrec_pipeline.llm.training import COSINE_GRID, gate_points
from allmrec_pipeline import metrics
cache = sys.argv[1]
S = ("overall", "cold_item", "warm_item")
D = {s: dict(np.load(f"{cache}/{s}.npz")) for s in S}
chosen = D["overall"]["users"][:300]
base = gate_points(True)
pts = [torch.cat([p, torch.tensor(w, dtype=p.dtype).view(2, 1)], 1) for p in base for w in COSINE_GRID]
ov = torch.zeros(2, 4); ov[:, 2] = 1
X = {s: torch.from_numpy(np.concatenate([D[s]["inputs"], D[s]["cosine"][..., None]], -1)) for s in S}
C = {s: torch.from_numpy(D[s]["cold"]) for s in S}
H = {s: np.stack([_hits(X[s], C[s], p, D[s]["targets"]) for p in pts]) for s in S}
ovh = {s: _hits(X[s], C[s], ov, D[s]["targets"]) for s in S}
n = len(D["overall"]["targets"]); ch = np.arange(n) < 300
coldt = D["overall"]["cold"][np.arange(n), D["overall"]["targets"]]
floor = H["overall"][0][ch & ~coldt].mean()
def merit(i):
    h = H["overall"][i]
    return (h[ch].mean() + h[ch & coldt].mean()) / 2 if h[ch & ~coldt].mean() >= floor else -1
for grid_name, idx in (("without cosine", [i for i in range(len(pts)) if pts[i][0, 3] == 0 and pts[i][1, 3] == 0]), ("with cosine", list(range(len(pts))))):
    i = max(idx, key=lambda j: (merit(j), -j))
    out = []
    for s, ref in (("overall", "cf"), ("cold_item", "ov"), ("cold_item", "cf"), ("warm_item", "cf")):
        ho = np.arange(len(D[s]["targets"])) >= 300
        if s != "overall": ho &= ~np.isin(D[s]["users"], chosen)
        r = H[s][0] if ref == "cf" else ovh[s]
        p = metrics.paired_bootstrap(H[s][i][ho], r[ho], seed=42)
        out.append(f"{s}−{ref} {p['difference']:+.3f} [{p['ci_low']:+.3f}, {p['ci_high']:+.3f}]")
    print(grid_name, "current rule picks", pts[i].tolist(), "|", "; ".join(out))
