import sys, numpy as np, torch, itertools
sys.path.insert(0, "src")
from allmrec_pipeline import metrics
from allmrec_pipeline.text_floors import zscore_rows
D = torch.load("bench/results/probes/feats.pt")
SC = ["overall", "cold_item", "warm_item"]
def z(x): return zscore_rows(np.asarray(x, dtype=np.float64))
def hit(s, t): return metrics.scores_per_row(s, t.numpy(), ("hit_at_1",))["hit_at_1"]
def score(S, a_cold, w_cold, w_warm, k=5):
    cold = S["count"].numpy() <= k
    return np.where(cold, a_cold, 1.0) * z(S["cf"].numpy()) + np.where(cold, w_cold, w_warm) * z(S["overlap"].numpy())
T = D["train_valid"]
grid = list(itertools.product([1, .5, 0], [0, .5, 1, 2, 3], [0, .25, .5, 1]))
res = sorted(grid, key=lambda g: -hit(score(T, *g), T["target"]).mean())
for g in res[:5] + [(1, 0.5, 0.5), (1, 2, 2), (0, 2, 0.5), (0.5, 2, 0.5)]:
    print(g, f"train {hit(score(T,*g),T['target']).mean():.3f}", " | ".join(f"{sc[:4]} {hit(score(D[sc],*g),D[sc]['target']).mean():.3f}" for sc in SC))
