"""The validation twins against the test rows of the same scenarios, CF only (no LLM): `cf` Hit@1, history length,
the targets' median training count, cold negatives per row.

    python bench/probes/twin_vs_test.py {-|video_games}
"""
import sys, numpy as np, torch
sys.path.insert(0, "bench")
from _common import run_catalog
from allmrec_pipeline import metrics
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.llm.inputs import user_vectors
env = sys.argv[1] if sys.argv[1] != "-" else None
cat, _ = run_catalog("", env=env)
idx = cat.load("item_index"); bb = load_backbone(cat.load("cf_model"), expected_n_items=len(idx)); E = bb.item_embeddings.detach()
pop = cat.load("item_popularity").set_index("item_idx")["count"].reindex(range(len(idx) + 1), fill_value=0).to_numpy()
ec = cat.load("eval_candidates")
for s in ("overall", "warm_item", "cold_item"):
    for split in ("valid", "test"):
        r = ec[(ec.scenario == s) & (ec.split == split)].reset_index(drop=True)
        if r.empty: continue
        C = torch.as_tensor(np.stack(r.candidates.to_numpy()).astype(np.int64))
        T = np.array([int(np.flatnonzero(c.numpy() == t)[0]) for c, t in zip(C, r.target_item_idx)])
        with torch.no_grad(): sc = bb.score_vectors(user_vectors(bb, list(r.history)), E[C]).float().numpy()
        h = metrics.scores_per_row(sc, T, ("hit_at_1",))["hit_at_1"]
        cold_neg = (pop[C.numpy()] <= 5).sum(1) - (pop[r.target_item_idx.to_numpy()] <= 5)
        print(f"{s:10s} {split:5s} n={len(r)} cf {h.mean():.3f} hist_len {np.mean([len([i for i in x if i]) for x in r.history]):.1f} target_count_median {np.median(pop[r.target_item_idx]):.0f} cold_negatives/row {cold_neg.mean():.2f} users {r.user_idx.nunique()}")
