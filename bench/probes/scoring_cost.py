"""Where `a_llmrec`'s scoring time goes on the CPU, and what would make it faster without changing the model
(docs/experiments.md, 2026-12-06 (night), "the default's cost on a fresh clone"). On the default run's Beauty
chain (its stage-2 checkpoint), the first 200 frozen test rows of `overall` and `cold_item`:

1. the prompts' lengths, and the padded tokens of batches of 4 in the stored order against batches of rows sorted
   by length; the seconds of both orders, and how far their scores differ (batch composition and bf16 rounding);
2. sorted rows in batches of 1 and 8 (4: the first look's);
3. one torch thread against two (the scores, bitwise);
4. two one-thread processes side by side, 100 rows each, against one two-thread process on the same 200 rows.

    OMP_NUM_THREADS=2 python bench/probes/scoring_cost.py | grep -E "^(torch threads|[0-9]\. )" \
        > bench/results/probes/scoring_cost_beauty.txt
"""
import os, subprocess, sys, time
sys.path.insert(0, "bench")
import numpy as np, torch
from _common import run_catalog
from allmrec_pipeline.pipelines.evaluate_scenarios import nodes as N
from allmrec_pipeline.llm.inputs import load_llm, user_vectors, row_samples
from allmrec_pipeline.llm.training import candidate_scores
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.models.data import popularity_counts

worker = sys.argv[1:2] == ["--worker"]
if worker:
    torch.set_num_threads(1)
cat, _ = run_catalog()
names = ["items", "item_index", "joint_item_embeddings", "text_item_embeddings", "item_title_vectors", "stage2_model",
         "eval_candidates", "item_popularity", "cf_model"]
inputs = {k: cat.load(k) for k in names}
for k in ("stage2", "dataset", "llms", "llm"):
    inputs[k] = cat.load(f"params:{k}")
backbone = load_backbone(inputs["cf_model"], expected_n_items=len(inputs["item_index"]))
dom = N._source_domain(inputs, inputs["stage2"])
counts = popularity_counts(inputs["item_popularity"], len(inputs["item_index"]))
_, model, tok = load_llm(inputs["llms"], inputs["llm"])
rec = N._recommender("a_llmrec", inputs, model, tok, dom, backbone.item_embeddings.detach(), backbone.hidden_size)


def samples_of(scenario, lo, hi):
    rows = N._rows(inputs["eval_candidates"], scenario, None, 42)
    cf = N._FloorScores(backbone, rows, dom, 10).cf.scores
    sub = rows.iloc[lo:hi]
    return row_samples(sub, user_vectors(backbone, list(sub["history"]), dom.cf_table), cf[lo:hi], counts)


def timed(samples, batch):
    tick = time.perf_counter()
    scores = candidate_scores(rec, samples, batch)
    return scores, time.perf_counter() - tick


if worker:
    part = int(sys.argv[2])
    _, seconds = timed(samples_of("overall", 100 * part, 100 * part + 100), 4)
    print(f"{seconds:.1f}")
    sys.exit()
print(f"torch threads {torch.get_num_threads()}; 200 rows per look; seconds are wall")
for scenario in ("overall", "cold_item"):
    samples = samples_of(scenario, 0, 200)
    lens = np.array([int(rec.prompts([s]).model_inputs()["attention_mask"].sum()) for s in samples])
    order = np.argsort(-lens, kind="stable")
    padded = lambda o: sum(lens[o][i : i + 4].max() * len(lens[o][i : i + 4]) for i in range(0, len(o), 4)) / lens.sum()
    a, ta = timed(samples, 4)
    b, tb = timed([samples[i] for i in order], 4)
    back = np.empty_like(b); back[order] = b
    target = np.array([s.target_pos for s in samples])
    print(f"1. {scenario}: prompt tokens mean {lens.mean():.0f} (min {lens.min()}, max {lens.max()}); padded / real "
          f"tokens, batches of 4: stored order {padded(np.arange(len(lens))):.3f}, sorted {padded(order):.3f}; "
          f"seconds {ta:.1f} -> {tb:.1f} (ratio {tb / ta:.3f}); max |score difference| {np.abs(a - back).max():.3f}; "
          f"top-1 changed in {(a.argmax(1) != back.argmax(1)).sum()} rows; Hit@1 {(a.argmax(1) == target).mean():.3f} -> "
          f"{(back.argmax(1) == target).mean():.3f}")
    if scenario == "overall":
        ordered = [samples[i] for i in order]
        line = ", ".join(f"batch {n}: {timed(ordered, n)[1] / len(samples):.3f} s a row" for n in (1, 8))
        print(f"2. {scenario}, sorted rows: {line} (batch 4: {tb / len(samples):.3f})")
        torch.set_num_threads(1); one, t1 = timed(samples[:40], 4); torch.set_num_threads(2); two, t2 = timed(samples[:40], 4)
        print(f"3. 40 rows, one thread {t1:.1f} s against two {t2:.1f} s; scores bitwise equal: {bool((one == two).all())}")
        tick = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(p)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}) for p in (0, 1)]
        own = [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        print(f"4. two one-thread processes side by side, 100 rows each: {own[0]:.1f} s and {own[1]:.1f} s of scoring "
              f"({max(own) / len(samples):.3f} s a row for the pair) against one two-thread process {ta:.1f} s "
              f"({ta / len(samples):.3f} s a row; {time.perf_counter() - tick:.0f} s wall with the loading)")
