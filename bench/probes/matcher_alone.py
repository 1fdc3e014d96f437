"""The run's text matcher alone (``stage2.model.gate_cosine_rank``: the title vectors adapted by the matcher saved
in the run's ``a_llmrec`` checkpoint), scored on the same test rows as the run's predictions and paired with
``a_llmrec``, ``cf`` and the text floors: is the matcher, an LLM-free scorer, a stronger reference than the floors?

    python bench/probes/matcher_alone.py [--env video_games] [--params ...] \
        > bench/results/probes/matcher_alone_<dataset>.txt
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import expected_hits, run_catalog, title_vector_frame  # noqa: E402

from allmrec_pipeline import metrics  # noqa: E402
from allmrec_pipeline.llm.inputs import embedding_table  # noqa: E402
from allmrec_pipeline.llm.text_matcher import TextMatcher, match_scores  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--env", default=None)
parser.add_argument("--params", default="", help="runtime params as the run that made the predictions took them")
args = parser.parse_args()
catalog, _ = run_catalog(args.params, env=args.env)
tensors = catalog.load("stage2_model").tensors
if "matcher.a" not in tensors:
    raise SystemExit("the run's a_llmrec has no text matcher (stage2.model.gate_cosine_rank: null)")
matcher = TextMatcher(*tensors["matcher.a"].shape)
matcher.load_state_dict({"a": tensors["matcher.a"], "b": tensors["matcher.b"]})
vectors = embedding_table(title_vector_frame(catalog), "vector")
n_history = int(catalog.load("params:stage2")["model"]["n_history"])
candidates = catalog.load("eval_candidates")
predictions = catalog.load("predictions")


def hits(frame):  # a tie at the top splits the hit, as the evaluation counts it
    return expected_hits(frame, ("row",))


for scenario in dict.fromkeys(predictions["scenario"]):
    if scenario == "cross_domain":
        continue  # another dataset's items: the run's title vectors do not cover them
    rows = candidates[(candidates["scenario"] == scenario) & (candidates["split"] == "test")].reset_index(drop=True)
    scored = predictions[(predictions["scenario"] == scenario)]
    model = hits(scored[scored["model"] == "a_llmrec"])
    rows = rows.iloc[model.index.to_numpy()]
    cands = np.stack(rows["candidates"].to_numpy()).astype(np.int64)
    targets = np.array([list(c).index(t) for c, t in zip(cands, rows["target_item_idx"], strict=True)])
    scores = match_scores(matcher, list(rows["history"]), cands, vectors, n_history)
    alone = metrics.scores_per_row(scores, targets, ("hit_at_1",))["hit_at_1"]
    line = f"{scenario:10s} n={len(alone)} matcher {alone.mean():.3f}"
    for name in ("a_llmrec", "cf", "text_overlap", "text_cosine"):
        other = hits(scored[scored["model"] == name]).reindex(model.index).to_numpy()
        paired = metrics.paired_bootstrap(alone, other, seed=0)
        line += (
            f" | - {name} ({other.mean():.3f}) {paired['difference']:+.3f} "
            f"[{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}]"
        )
    print(line)
