"""x_u · f_I^dec(q_i) (stage 1's text-derived CF stand-in, the cross-domain path) against x_u · E_i on the
validation rows: does the stand-in rank cold targets better than the word overlap?

    python bench/probes/stand_in_scores.py {-|video_games} valid
"""
import sys, numpy as np, torch
sys.path.insert(0, "bench")
from _common import run_catalog
from allmrec_pipeline import metrics, text_floors
from allmrec_pipeline.pipelines.stage1.nodes import load_alignment, load_item_text_vectors
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.llm.inputs import user_vectors
env = sys.argv[1] if sys.argv[1] != "-" else None; split = sys.argv[2]
cat, _ = run_catalog("", env=env)
idx = cat.load("item_index"); n = len(idx)
bb = load_backbone(cat.load("cf_model"), expected_n_items=n)
al = load_alignment(cat.load("stage1_model"), bb.hidden_size)
vec = load_item_text_vectors(cat.load("stage1_item_text_vectors"), n)
stand = torch.cat([torch.zeros(1, bb.hidden_size), al.cf_stand_in(vec[1:])])
E = bb.item_embeddings.detach()
pop = cat.load("item_popularity").set_index("item_idx")["count"].reindex(range(n + 1), fill_value=0).to_numpy()
cands = cat.load("eval_candidates")
def hit(s, t): return metrics.scores_per_row(s, t, ("hit_at_1",))["hit_at_1"]
for scen in ("overall", "cold_item", "warm_item"):
    rows = cands[(cands.scenario == scen) & (cands.split == split)].reset_index(drop=True)
    C = torch.as_tensor(np.stack(rows["candidates"].to_numpy()).astype(np.int64))
    T = np.array([int(np.flatnonzero(c.numpy() == t)[0]) for c, t in zip(C, rows["target_item_idx"])])
    with torch.no_grad():
        u = user_vectors(bb, list(rows["history"]))
        cf = bb.score_vectors(u, E[C]).float().numpy()
        st = bb.score_vectors(u, stand[C]).float().numpy()
    cold = pop[C.numpy()] <= 5
    mix = np.where(cold, st, cf)
    print(f"{scen:10s} cf {hit(cf,T).mean():.3f} standin {hit(st,T).mean():.3f} cf-warm/standin-cold(raw) {hit(mix,T).mean():.3f}", flush=True)
