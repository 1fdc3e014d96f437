"""The ablation table at the current default (docs/results.md, 2026-12-06), from predictions of separate runs on the
same seeded rows: the default run's latest `predictions` (cf, text_overlap, cf_text_gate, a_llmrec), the first
batch's per-model Parquet files (mlp_llm, no_user, random_items, no_cosine_gate; a session-local catalog kept them
under ablations_s18/), and each variant named on the command line from the `ablation_predictions` version of its
`kedro run --pipeline ablations_<variant>` run; then the pipeline's own summarize_scenarios and compare_models on
the merged table (seed 42). Prints markdown tables.

    python bench/probes/merge_ablation_tables.py no_overlap_gate,no_gate,no_cf_skip,titles_only
"""
import glob, sys
import pandas as pd
from allmrec_pipeline.pipelines.evaluate_scenarios.nodes import compare_models, summarize_scenarios

root = "data/07_model_output/beauty/sasrec/smollm2"
S = ["overall", "cold_item", "warm_item", "cold_user"]
default = pd.read_parquet(sorted(glob.glob(f"{root}/predictions.parquet/*/*"))[-1])
frames = [default[default["model"].isin(["cf", "text_overlap", "cf_text_gate", "a_llmrec"]) & default["scenario"].isin(S)]]
old = ["mlp_llm", "no_user", "random_items", "no_cosine_gate"]
for m in old:
    frames.append(pd.read_parquet(f"{root}/ablations_s18/{m}.parquet"))
new = sys.argv[1].split(",")
versions = sorted(glob.glob(f"{root}/ablation_predictions.parquet/*/*"))
tables = {v: pd.read_parquet(v) for v in versions}
for m in new:  # the newest version that scored it
    v = [v for v in versions if m in set(tables[v]["model"])][-1]
    frames.append(tables[v][tables[v]["model"] == m]); print("#", m, "from", v.split("/")[-2], file=sys.stderr)
table = pd.concat(frames, ignore_index=True)
models = ["cf", "text_overlap", "cf_text_gate", "a_llmrec", *old, *new]
order = {m: i for i, m in enumerate(models)}
table = table.sort_values(["scenario", "model"], key=lambda c: c.map(order) if c.name == "model" else c.map({s: i for i, s in enumerate(S)}), kind="stable").reset_index(drop=True)
params = {"bootstrap_resamples": 1000, "confidence": 0.95, "models": models, "scenarios": S}
summary, _ = summarize_scenarios(table, params, 42)
paired, _ = compare_models(table, params, 42)
def cell(r, bold=True):
    s = f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]".replace("-", "−")
    return f"**{s}**" if bold and r["significant"] else s
sm = summary[summary["metric"] == "hit_at_1"] if "metric" in summary else summary
print(summary.columns.tolist(), file=sys.stderr)
print("| model | " + " | ".join(S) + " |\n|---|" + "---|" * len(S))
for m in models:
    row = []
    for s in S:
        r = sm[(sm["model"] == m) & (sm["scenario"] == s)].iloc[0]
        row.append(f"{r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] (n={int(r['n'])})")
    print(f"| `{m}` | " + " | ".join(row) + " |")
for ref in ("a_llmrec", "best_floor", "cf"):
    print(f"\n− {ref}:\n| model | " + " | ".join(S) + " |\n|---|" + "---|" * len(S))
    p = paired[(paired["metric"] == "hit_at_1") & (paired["reference"] == ref)]
    for m in models:
        q = p[p["model"] == m]
        if q.empty: continue
        cells = []
        for s in S:
            r = q[q["scenario"] == s]
            cells.append(cell(r.iloc[0]) + ("" if ref != "best_floor" else f" ({r.iloc[0]['reference_model']})") if len(r) else "")
        print(f"| `{m}` | " + " | ".join(cells) + " |")
