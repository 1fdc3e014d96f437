"""A text matcher fitted on *every* transition (a text-only sequential recommender) beside the run's three gate
scores, on the validation rows of a `bench/gate_frontier.py` cache (overall and its cold/warm twins; no test row):
(1) z(CF) + w · z(matcher) against `cf`; (2) the best gate over [z(CF), z(head), z(overlap), z(matcher)...] on the
twins at each floor for cold items − overlap (an oracle's choice, optimistic); (3) stage 2's nested rule emulated
on the first 300 `overall` rows (the rows the run chose its gate on), the matcher's weights chosen second.
The matcher scores come from `matcher_offline.py` with SAVE=<dir> (one `<scenario>.npy` per scenario).

    SAVE=/tmp/mall python bench/probes/matcher_offline.py video_games max 64 3000
    python bench/probes/sequence_matcher.py <cache dir> /tmp/mall [<more matcher dirs>]
"""
import itertools, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from allmrec_pipeline import metrics, text_floors  # noqa: E402
from allmrec_pipeline.llm.training import COSINE_GRID, gate_points  # noqa: E402

cache, extras = sys.argv[1], sys.argv[2:]
S = ("overall", "cold_item", "warm_item"); NCH = 300; D = {}
for s in S:
    d = dict(np.load(f"{cache}/{s}.npz")); X = d["inputs"][..., :3].astype(np.float64)
    cols = [text_floors.zscore_rows(np.load(f"{e}/{s}.npy").astype(np.float64))[..., None] for e in extras]
    D[s] = (np.concatenate([X, *cols], -1), d["cold"], d["targets"])
K_ = D["overall"][0].shape[-1]


def hits(s, W, K, rows=slice(None)):
    X, cold, tg = (v[rows] for v in D[s])
    return ((np.where(cold, X @ np.asarray(K), X @ np.asarray(W))).argmax(1) == tg).astype(float)


def ci(a, b):
    p = metrics.paired_bootstrap(a, b, seed=0)
    return f"{p['difference']:+.3f} [{p['ci_low']:+.3f}, {p['ci_high']:+.3f}]"


cf = {s: (D[s][0][..., 0].argmax(1) == D[s][2]).astype(float) for s in S}
ov = (D["cold_item"][0][..., 2].argmax(1) == D["cold_item"][2]).astype(float)
print("(1) z(CF) + w * z(matcher 1), paired with cf (1,000 validation rows per scenario)")
for s in S:
    X, _, tg = D[s]; line = f"  {s:9s} cf {cf[s].mean():.3f} | matcher alone {(X[..., 3].argmax(1) == tg).mean():.3f}"
    for w in (0.25, 0.5):
        h = ((X[..., 0] + w * X[..., 3]).argmax(1) == tg).astype(float)
        line += f" | w={w}: {h.mean():.3f} {ci(h, cf[s])}"
    print(line)
print("(2) the best gate on the twins (oracle) at each floor of cold_item - overlap: warm_item - cf, overall - cf")
res = []
g3 = [0, .25, .5]
for W in itertools.product([1], g3, g3, *[[0, .25, .5]] * (K_ - 3)):
    for K in itertools.product([.25, .5, 1], [0, .5, 1], [0, .5, 1], *[[0, .5, 1, 2]] * (K_ - 3)):
        res.append((hits("warm_item", W, K).mean() - cf["warm_item"].mean(), hits("cold_item", W, K).mean() - ov.mean(),
                    hits("overall", W, K).mean() - cf["overall"].mean(), list(W), list(K)))
for need in (-0.02, 0.0, 0.03, 0.05):
    b = max([r for r in res if r[1] >= need], key=lambda r: r[0])
    print(f"  cold-overlap >= {need:+.2f}: warm-cf {b[0]:+.3f}, cold-overlap {b[1]:+.3f}, overall-cf {b[2]:+.3f}; other {b[3]} cold {b[4]}")
print(f"(3) stage 2's nested rule on the first {NCH} overall rows, matcher 1 in the fourth column")
X, cold, tg = D["overall"]; ct = cold[np.arange(len(tg)), tg][:NCH]
print(f"  cold targets among them: {int(ct.sum())}")


def fig(g):
    h = hits("overall", g[0], g[1], slice(0, NCH)); return h.mean(), h[ct].mean(), h[~ct].mean()


def best(points):
    floor = fig(points[0])[2]
    return max([p for p in points if fig(p)[2] >= floor], key=lambda p: (fig(p)[0] + fig(p)[1]) / 2)


pts = [np.concatenate([p.numpy(), np.zeros((2, 1))], 1) for p in gate_points(True)]
g = best(pts)
nested = [np.where(np.arange(4) == 3, np.array([[w], [c]]), g) for w, c in COSINE_GRID]
g2 = best(nested)
print(f"  first step {g.tolist()}, then {g2.tolist()}")
for w, c in COSINE_GRID:
    a, cc, o = fig(np.where(np.arange(4) == 3, np.array([[w], [c]]), g))
    print(f"    matcher other {w}, cold {c}: all {a:.3f}, cold targets {cc:.3f}, others {o:.3f}")
for s, ref, name in (("overall", cf["overall"], "cf"), ("cold_item", ov, "overlap"), ("warm_item", cf["warm_item"], "cf")):
    rows = slice(NCH, None) if s == "overall" else slice(None)
    h = hits(s, g2[0], g2[1], rows)
    print(f"  the rule's gate, {s} (held out: {len(h)} rows) {h.mean():.3f} - {name} {ci(h, ref[rows])}")
