"""The ablation table at the current default (docs/results.md, "MLP-LLM and the ablations at the current default"):
the default run's latest `predictions` (cf, text_overlap, cf_text_gate, a_llmrec) merged with each variant named
on the command line, taken from the newest `ablation_predictions` version that scored it (one
`make ablations VARIANT=<variant>` run each, its `evaluate_scenarios.ablation_models` without a_llmrec so that
the default's own predictions are the reference); then the pipeline's own summarize_scenarios and compare_models
on the merged table (seed 42; the paired differences use the seeded rows both scored), printed by the report's
own `markdown_table` and `paired_tables`.

    python bench/probes/ablation_table.py no_user,random_items,titles_only [--dataset beauty]
"""
import argparse, glob, sys
import pandas as pd
from allmrec_pipeline.pipelines.evaluate_scenarios import report
from allmrec_pipeline.pipelines.evaluate_scenarios.nodes import compare_models, summarize_scenarios

p = argparse.ArgumentParser()
p.add_argument("variants")
p.add_argument("--dataset", default="beauty")
p.add_argument("--scenarios", default="overall,cold_item,warm_item,cold_user,cross_domain")
a = p.parse_args()
root = f"data/07_model_output/{a.dataset}/sasrec/smollm2"
S = a.scenarios.split(",")
base = ["cf", "text_overlap", "cf_text_gate", "a_llmrec"]
default_version = sorted(glob.glob(f"{root}/predictions.parquet/*/*"))[-1]
default = pd.read_parquet(default_version)
print("# default predictions", default_version.split("/")[-2], file=sys.stderr)
frames = [default[default["model"].isin(base) & default["scenario"].isin(S)]]
variants = a.variants.split(",")
versions = sorted(glob.glob(f"{root}/ablation_predictions.parquet/*/*"))
tables = {v: pd.read_parquet(v) for v in versions}
for m in variants:  # the newest version that scored it
    v = [v for v in versions if m in set(tables[v]["model"])][-1]
    t = tables[v]
    frames.append(t[(t["model"] == m) & t["scenario"].isin(S)])
    print("#", m, "from", v.split("/")[-2], file=sys.stderr)
table = pd.concat(frames, ignore_index=True)
# a_llmrec again on the seeded rows the variants scored (the same 300 per scenario), under its own name
shared = table[table["model"] == variants[0]][["scenario", "row"]]
same = table[table["model"] == "a_llmrec"].merge(shared, on=["scenario", "row"]).assign(model="a_llmrec_same_rows")
table = pd.concat([table, same], ignore_index=True)
base.append("a_llmrec_same_rows")
models = [*base, *variants]
order = {m: i for i, m in enumerate(models)}
rank = {s: i for i, s in enumerate(S)}
table = table.sort_values(
    ["scenario", "model"], key=lambda c: c.map(order if c.name == "model" else rank), kind="stable"
).reset_index(drop=True)
params = {"bootstrap_resamples": 1000, "confidence": 0.95, "models": models, "scenarios": S}
summary, _ = summarize_scenarios(table, params, 42)
paired, _ = compare_models(table, params, 42)
n_candidates = int(table["candidates"].map(len).max())
print(report.markdown_table(summary, "hit_at_1", n_candidates, "The ablations at the current default"))
print(report.paired_tables(paired, "hit_at_1", models))
