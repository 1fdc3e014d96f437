"""The run's ``a_llmrec`` on rows at the test position of users outside every frozen row (docs/experiments.md,
2026-12-06, "the test position"): are the frozen test rows' figures on warm items what the model does at that
position, or one 1,000-row draw? Rows are drawn as ``test_position_choice.py`` draws them (the same users, seed
and negatives: history up to the last item, target the last item, 19 negatives as split_sequences draws them), from
its judging half; the first ``--warm`` rows whose target is warm and ``--cold`` whose target is cold are scored by
the stage-2 model (its LLM's head and its gate, as evaluation scores it), ``cf``, ``text_overlap`` and the run's
``cf_text_gate`` (its stored weights). No frozen row is read.

    python bench/probes/test_position_model.py [--env video_games] --free-gate data/06_models/<dataset>/sasrec/smollm2/cf_text_gate.json/<version>/cf_text_gate.json > bench/results/probes/test_position_model_<env>.txt
"""
import json, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _outside_rows import hits, interval, load_run, parser, rows_at  # noqa: E402
from allmrec_pipeline.llm.inputs import cf_logits, item_table, load_llm, row_samples, user_vectors
from allmrec_pipeline.llm.recommender import fuse_inputs, recommender_from_checkpoint
from allmrec_pipeline.progress import progress_bar


ap = parser(cache=False)
ap.add_argument("--warm", type=int, default=2000); ap.add_argument("--cold", type=int, default=1000)
ap.add_argument("--free-gate", type=Path, help="the run's cf_text_gate.json (its weights)")
args = ap.parse_args()
t0 = time.time()
run = load_run(args.env, args.max_users, 2)
load, SEED, users, counts, backbone, titles = run.catalog.load, run.seed, run.users, run.counts, run.backbone, run.titles
hist, tgt, C, group = rows_at(run, 1, "probe/position/1")
judge = np.arange(len(users)) >= len(users) // 2
pick = {"warm_item": np.flatnonzero(judge & (group == "warm"))[: args.warm], "cold_item": np.flatnonzero(judge & (group == "cold"))[: args.cold]}
checkpoint = load("stage2_model")
_, model, tokenizer = load_llm(load("params:llms"), load("params:llm"))
stage2 = load("params:stage2")
rec = recommender_from_checkpoint(checkpoint, model, tokenizer, item_table(stage2["item_source"], load("joint_item_embeddings"), backbone),
                                  titles, title_vectors=run.title_vectors)
free_gate = torch.tensor(json.loads(args.free_gate.read_text())["weights"]) if args.free_gate else None
print(f"{len(users)} users outside the frozen rows; judging half's test-position rows scored: warm {len(pick['warm_item'])}, cold {len(pick['cold_item'])}; gate {rec.gate.tolist()}")
def iv(x): return interval(x, SEED)
for s, i in pick.items():
    rows = pd.DataFrame({"user_idx": users["user_idx"].to_numpy()[i], "target_item_idx": tgt[i], "candidates": list(C[i]), "history": [hist[k] for k in i]})
    uv = user_vectors(backbone, list(rows["history"]))
    with torch.no_grad():
        cf = cf_logits(backbone, uv, list(C[i]))
    samples = row_samples(rows, uv, cf, counts)
    with torch.no_grad():
        head = torch.cat([rec.head_scores(samples[k : k + 4]) for k in progress_bar(range(0, len(samples), 4), desc=f"head {s}", unit="batch")])
        inputs = rec.gate_inputs(head, samples).cpu(); cold = rec.cold_mask(samples).cpu()
    T = np.array([x.target_pos for x in samples])
    model_h = hits(fuse_inputs(inputs, cold, rec.gate.cpu()).numpy(), T)
    cf_h = hits(inputs[..., 0].numpy(), T); ov_h = hits(inputs[..., 2].numpy(), T)
    free = inputs[..., [0, 2, 3]]
    line = f"  {s:9s} n={len(T)} a_llmrec {model_h.mean():.3f} cf {cf_h.mean():.3f} | a_llmrec - cf {iv(model_h - cf_h)} | - text_overlap {iv(model_h - ov_h)}"
    if free_gate is not None:
        fg = hits(fuse_inputs(free, cold, free_gate).numpy(), T)
        line += f" | cf_text_gate {fg.mean():.3f} (- cf {iv(fg - cf_h)}) | a_llmrec - cf_text_gate {iv(model_h - fg)}"
    print(line, flush=True)
print(f"done in {time.time()-t0:.0f} s")
