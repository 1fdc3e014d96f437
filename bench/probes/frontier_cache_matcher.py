"""Copy a `bench/gate_frontier.py` cache of a run whose gate weighs z(text_cosine) (fourth column) into another
folder with that column replaced by z(the latest run's text matcher), read from its `a_llmrec` checkpoint.

    python bench/probes/frontier_cache_matcher.py <cache dir> <new dir> {-|video_games}
"""
import sys, numpy as np
from pathlib import Path
sys.path.insert(0, "bench")
from _common import run_catalog, title_vector_frame
from gate_rules import _valid_rows
from allmrec_pipeline import text_floors
from allmrec_pipeline.llm.inputs import embedding_table
from allmrec_pipeline.llm.text_matcher import TextMatcher, match_scores
src, dst, env = Path(sys.argv[1]), Path(sys.argv[2]), (sys.argv[3] if sys.argv[3] != "-" else None)
dst.mkdir(parents=True, exist_ok=True)
cat, _ = run_catalog("", env=env)
t = cat.load("stage2_model").tensors
m = TextMatcher(*t["matcher.a"].shape); m.load_state_dict({"a": t["matcher.a"], "b": t["matcher.b"]})
V = embedding_table(title_vector_frame(cat), "vector")
cands = cat.load("eval_candidates")
for s in ("overall", "cold_item", "warm_item"):
    d = dict(np.load(src / f"{s}.npz")); rows = _valid_rows(cands, s)
    C = np.stack(rows["candidates"].to_numpy()).astype(np.int64)
    d["inputs"] = d["inputs"].copy()
    d["inputs"][..., 3] = text_floors.zscore_rows(match_scores(m, list(rows["history"]), C, V, 10))
    np.savez(dst / f"{s}.npz", **d)
print("ok")
