"""An item co-occurrence heuristic (next-item counts within 3 positions in the training sequences, decayed over
the 10 most recent history items) on the validation rows: does a CF-free-of-SASRec signal rank cold targets?

    python bench/probes/cooccurrence_floor.py {-|video_games} valid
"""
import sys, numpy as np, collections
sys.path.insert(0, "bench")
from _common import run_catalog
from allmrec_pipeline import metrics, text_floors
env = sys.argv[1] if sys.argv[1] != "-" else None; split = sys.argv[2]
catalog, _ = run_catalog("", env=env)
tr = catalog.load("train_sequences"); pop = catalog.load("item_popularity"); cands = catalog.load("eval_candidates")
print(tr.columns.tolist(), pop.columns.tolist())
n = int(catalog.load("item_index").item_idx.max()) + 1
counts = np.zeros(n); 
W = 3
co = collections.defaultdict(collections.Counter)
for seq in tr["items"]:
    seq = [int(i) for i in seq]
    for i, a in enumerate(seq):
        counts[a] += 1
        for b in seq[i + 1:i + 1 + W]:
            co[a][b] += 1
        for b in seq[max(0, i - W):i]:
            co[a][b] += 0.5
def hit(s, t): return metrics.scores_per_row(s, t, ("hit_at_1",))["hit_at_1"]
for scen in ("overall", "cold_item", "warm_item"):
    rows = cands[(cands.scenario == scen) & (cands.split == split)].reset_index(drop=True)
    H = list(rows["history"]); C = np.stack(rows["candidates"].to_numpy()).astype(np.int64)
    T = np.array([int(np.flatnonzero(c == t)[0]) for c, t in zip(C, rows["target_item_idx"])])
    sc = np.zeros(C.shape)
    for r, (h, c) in enumerate(zip(H, C)):
        rec = [int(i) for i in h if int(i) != 0][-10:]
        for k, a in enumerate(reversed(rec)):
            for j, it in enumerate(c):
                sc[r, j] += co[a][int(it)] * 0.7 ** k
    tc = counts[C[np.arange(len(T)), T]]
    nz = (sc > 0).any(1)
    print(f"{scen:10s} n={len(rows)} cooc hit {hit(sc, T).mean():.3f} rows-with-any-cooc {nz.mean():.3f} target-has-cooc {(sc[np.arange(len(T)), T] > 0).mean():.3f} target train count median {np.median(tc):.0f} zero {np.mean(tc==0):.3f}")
