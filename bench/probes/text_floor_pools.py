"""The text floors pooled other ways, on the 1,000 validation rows of overall, cold_item, warm_item (and cold_user
where it has them): word overlap with the union of the 10 most recent history titles (the floor), the title
cosine with their mean vector (the `text_cosine` floor), with the nearest of them (max), word overlap with the
nearest title, and z(overlap) + z(nearest cosine); each paired with the overlap floor.

    python bench/probes/text_floor_pools.py {-|video_games} valid > bench/results/probes/text_floor_pools_<dataset>.txt
"""
import sys, numpy as np
sys.path.insert(0, "bench")
from _common import run_catalog, title_vector_frame
from allmrec_pipeline import text_floors, metrics
from allmrec_pipeline.llm.inputs import embedding_table
env = sys.argv[1] if sys.argv[1] != "-" else None
split = sys.argv[2]
catalog, _ = run_catalog("", env=env)
items = catalog.load("items"); idx = catalog.load("item_index")
V = embedding_table(title_vector_frame(catalog), "vector").numpy().astype(np.float64)
titles = dict(zip(items.item_id, items.title))
words = [frozenset()] * (idx.item_idx.max() + 1)
for iid, ii in zip(idx.item_id, idx.item_idx): words[ii] = text_floors.title_words(titles.get(iid, ""))
cands_all = catalog.load("eval_candidates")
def hit(s, t): return metrics.scores_per_row(s, t, ("hit_at_1",))["hit_at_1"]
for scen in ("overall", "cold_item", "warm_item", "cold_user"):
    rows = cands_all[(cands_all.scenario == scen) & (cands_all.split == split)].reset_index(drop=True)
    if rows.empty: continue
    H = list(rows["history"]); C = np.stack(rows["candidates"].to_numpy()).astype(np.int64)
    T = np.array([int(np.flatnonzero(c == t)[0]) for c, t in zip(C, rows["target_item_idx"])])
    ov = text_floors.overlap_scores(H, C, words, 10)
    cos = text_floors.cosine_scores(H, C, V, 10)
    mo = np.zeros(C.shape); mx = np.zeros(C.shape)
    for r, (h, c) in enumerate(zip(H, C)):
        rec = [int(i) for i in h if int(i) != 0][-10:]
        if not rec: continue
        mx[r] = (V[c] @ V[rec].T).max(1)
        for j, it in enumerate(c):
            a = words[int(it)]
            mo[r, j] = max((len(a & words[x]) / len(a | words[x]) if (a | words[x]) else 0.0) for x in rec)
    b = hit(ov, T)
    out = f"{scen:10s} n={len(rows)} overlap {b.mean():.3f}"
    for name, s in (("cos_mean", cos), ("cos_max", mx), ("overlap_max", mo), ("z(ov)+z(cosmax)", text_floors.zscore_rows(ov)+text_floors.zscore_rows(mx))):
        h = hit(s, T); p = metrics.paired_bootstrap(h, b, seed=0)
        out += f" | {name} {h.mean():.3f} ({p['difference']:+.3f} [{p['ci_low']:+.3f},{p['ci_high']:+.3f}])"
    print(out, flush=True)
