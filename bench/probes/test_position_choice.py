"""Does the count gate's validation-to-test swing come from the position (the second-to-last item against the last)?
(docs/experiments.md, 2026-12-06, "the test position"). Rows are drawn for users outside every frozen row (as
``many_choice_rows.py`` draws them) at two positions: validation (history: the training sequence; target: the next
item) and test (history: the sequence up to its last item; target: the last item), the same users, 19 negatives
drawn as split_sequences draws them; LLM-free inputs (z(CF), z(text_overlap), z(text matcher) of the run's
checkpoint). The users are split in two halves: the LLM-free gate is chosen by the bounds rule on the first half's
rows at either position and judged on the second half's rows at both. No frozen row is read.

    python bench/probes/test_position_choice.py [--env video_games] > bench/results/probes/test_position_choice_<env>.txt
"""
import argparse, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import run_catalog, title_vector_frame  # noqa: E402
from allmrec_pipeline import metrics
from allmrec_pipeline.llm.gate_bounds import GateBounds, pick_gate
from allmrec_pipeline.llm.inputs import cf_logits, item_titles, title_vector_table, user_vectors
from allmrec_pipeline.llm.recommender import fuse_inputs
from allmrec_pipeline.llm.text_gate import TextGate
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.models.data import popularity_counts
from allmrec_pipeline.pipelines.split_sequences.candidates import sample_candidates, seen_items
from allmrec_pipeline.seeding import rng_for

ap = argparse.ArgumentParser()
ap.add_argument("--env", default=None); ap.add_argument("--max-users", type=int, default=20000)
args = ap.parse_args()
t0 = time.time()
catalog, _ = run_catalog("", env=args.env)
load = catalog.load
S = ("overall", "cold_item", "warm_item")
B = GateBounds(**load("params:stage2")["training"]["gate_bounds"])
SEED = int(load("params:seed"))
item_index, popularity = load("item_index"), load("item_popularity")
n = len(item_index)
counts = popularity_counts(popularity, n)
sequences, train, frozen = load("sequences"), load("train_sequences"), load("eval_candidates")
max_len = int(load("params:split")["max_seq_len"])
full = sequences.set_index("user_idx")["items"]
users = train[~train["user_idx"].isin(set(frozen["user_idx"]))]
users = users[users["user_idx"].map(full.map(len)).to_numpy() >= users["items"].map(len).to_numpy() + 2]
users = users.sample(frac=1.0, random_state=SEED).head(args.max_users).reset_index(drop=True)
backbone = load_backbone(load("cf_model"), expected_n_items=n)
titles = item_titles(load("items"), item_index)
vectors = title_vector_table(title_vector_frame(catalog), n).numpy()
tg = TextGate.from_checkpoint(load("stage2_model"), titles, vectors)
seen = seen_items(sequences)
group_of = popularity.set_index("item_idx")["group"]
def rows_at(offset):
    """(inputs, cold, targets, groups) at the validation (0) or test (1) position."""
    hist = [np.asarray(full[u][: len(h) + offset])[-max_len:] for u, h in zip(users["user_idx"], users["items"])]
    tgt = np.array([full[u][len(h) + offset] for u, h in zip(users["user_idx"], users["items"])], dtype=np.int64)
    C = np.stack(sample_candidates(users["user_idx"].to_numpy(), tgt, seen, n, 20, rng_for(SEED, f"probe/position/{offset}"))).astype(np.int64)
    with torch.no_grad():
        cf = cf_logits(backbone, user_vectors(backbone, hist), list(C))
    X = tg.inputs(hist, C, cf).float()
    T = np.array([int(np.flatnonzero(c == t)[0]) for c, t in zip(C, tgt)])
    return X, tg.cold(counts[C]), T, pd.Series(tgt).map(group_of).astype(str).to_numpy()
data = {"validation": rows_at(0), "test": rows_at(1)}
half = np.arange(len(users)) < len(users) // 2
print(f"{len(users)} users outside the frozen rows, each at both positions; threshold {tg.config.gate_max_count}; {time.time()-t0:.0f} s")
def hits(sc, t): return metrics.scores_per_row(np.asarray(sc), np.asarray(t), ("hit_at_1",))["hit_at_1"]
def iv(x):
    r = metrics.paired_bootstrap(x, np.zeros_like(x), seed=SEED); return f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
def idx(pos, part):
    X, cm, T, g = data[pos]
    keep = half if part == "choose" else ~half
    return {"overall": np.flatnonzero(keep), "cold_item": np.flatnonzero(keep & (g == "cold")), "warm_item": np.flatnonzero(keep & (g == "warm"))}
for pos in data:
    i = idx(pos, "judge"); X, cm, T, g = data[pos]
    cfh = {s: hits(X[i[s]][..., 0].numpy(), T[i[s]]) for s in S}
    print(f"{pos} position, judging half: rows {[len(i[s]) for s in S]}; cf Hit@1 " + " ".join(f"{s} {cfh[s].mean():.3f}" for s in S))
gates = {}
for pos in data:
    i = idx(pos, "choose"); X, cm, T, g = data[pos]
    ref = hits(X[i["cold_item"]][..., 1].numpy(), T[i["cold_item"]])
    gates[pos], f = pick_gate({s: X[i[s]] for s in S}, {s: cm[i[s]] for s in S}, {s: T[i[s]] for s in S}, ref, tg.points(), B, SEED)
    print(f"gate chosen at the {pos} position (choosing half {[len(i[s]) for s in S]}): {np.round(gates[pos].numpy(), 2).tolist()} slack {f['smallest_slack']:+.3f}")
for judge_pos in data:
    i = idx(judge_pos, "judge"); X, cm, T, g = data[judge_pos]
    print(f"judged at the {judge_pos} position")
    h = {}
    for pos, gate in gates.items():
        for s in S:
            h[pos, s] = hits(fuse_inputs(X[i[s]], cm[i[s]], gate).numpy(), T[i[s]])
    for s in S:
        cfh = hits(X[i[s]][..., 0].numpy(), T[i[s]]); ovh = hits(X[i[s]][..., 1].numpy(), T[i[s]])
        line = " | ".join(f"chosen at {pos}: {h[pos, s].mean():.3f} -cf {iv(h[pos, s]-cfh)}" + (f" -ov {iv(h[pos, s]-ovh)}" if s == "cold_item" else "") for pos in gates)
        print(f"  {s:9s} {line} | test-chosen - validation-chosen {iv(h['test', s]-h['validation', s])}")
print(f"done in {time.time()-t0:.0f} s")
