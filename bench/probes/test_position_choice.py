"""Does the count gate's validation-to-test swing come from the position (the second-to-last item against the last)?
(docs/experiments.md, 2026-12-06, "the test position"). Rows are drawn for users outside every frozen row (as
``many_choice_rows.py`` draws them) at two positions: validation (history: the training sequence; target: the next
item) and test (history: the sequence up to its last item; target: the last item), the same users, 19 negatives
drawn as split_sequences draws them; LLM-free inputs (z(CF), z(text_overlap), z(text matcher) of the run's
checkpoint). The users are split in two halves: the LLM-free gate is chosen by the bounds rule on the first half's
rows at either position and judged on the second half's rows at both. No frozen row is read.

    python bench/probes/test_position_choice.py [--env video_games] > bench/results/probes/test_position_choice_<env>.txt
"""
import sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _outside_rows import hits, interval, llm_free, load_run, parser, rows_at  # noqa: E402
from allmrec_pipeline.llm.gate_bounds import pick_gate
from allmrec_pipeline.llm.recommender import fuse_inputs


ap = parser(cache=False)
args = ap.parse_args()
t0 = time.time()
run = load_run(args.env, args.max_users, 2)
S = ("overall", "cold_item", "warm_item")
B, SEED, tg, users = run.bounds, run.seed, run.text_gate, run.users
def rows_at_position(offset):
    """(inputs, cold, targets, groups) at the validation (0) or test (1) position."""
    hist, tgt, C, group = rows_at(run, offset, f"probe/position/{offset}")
    X, cold, T = llm_free(run, hist, C, tgt)
    return X, cold, T, group
data = {"validation": rows_at_position(0), "test": rows_at_position(1)}
half = np.arange(len(users)) < len(users) // 2
print(f"{len(users)} users outside the frozen rows, each at both positions; threshold {tg.config.gate_max_count}; {time.time()-t0:.0f} s")
def iv(x): return interval(x, SEED)
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
