"""Stage-2 variants against cf and the text floors on the same validation rows, with paired differences.

Each variant (an entry of ``stage2.variants``, e.g. ``a_llmrec`` or ``no_cf_skip``) is trained by the pipeline's
own node, ``train_projectors``, with the run's parameters (``conf/base`` + ``conf/local`` + ``--params``), then
scored on seeded ``overall`` *validation* rows (so no choice is made on test rows), beside ``cf``,
``text_overlap`` and ``cf_text`` (at the weight ``choose_cf_text_weight`` picks) on the same rows. Every model
is compared with ``cf`` and with the best of the two floors by a paired bootstrap, and, when several are trained,
with the first of them. ``--cold-max-count N`` also
reports the rows whose target has at most N training interactions (a cold-item view of the same rows).

Inputs come from the latest run through a KedroSession and the catalog (``make run`` first):

    python bench/stage2_variants.py --variants a_llmrec,no_cf_skip --rows 300 --cold-max-count 5
    python bench/stage2_variants.py --variants a_llmrec --params stage2.training.head_warmup_users=600
    python bench/stage2_variants.py --variants a_llmrec --sweep training.head_warmup_users=250:500:1000:1500
    python bench/stage2_variants.py --variants a_llmrec --held-out --rows 700   (rows stage 2 never chose on)

Prints one JSON line; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from _common import emit, run_catalog, title_vector_frame

from allmrec_pipeline import metrics, text_floors
from allmrec_pipeline.llm.inputs import (
    item_table,
    item_titles,
    load_llm,
    row_samples,
    title_vector_table,
    user_vectors,
)
from allmrec_pipeline.llm.recommender import recommender_from_checkpoint
from allmrec_pipeline.llm.training import Stage2TrainingConfig, candidate_scores, gate_table
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.models.data import popularity_counts
from allmrec_pipeline.pipelines.evaluate_scenarios.nodes import choose_cf_text_weight
from allmrec_pipeline.pipelines.evaluate_scenarios.scorers import Domain, score_cf, score_text_overlap
from allmrec_pipeline.pipelines.stage2.nodes import train_projectors
from allmrec_pipeline.schema import merge_variant
from allmrec_pipeline.seeding import rng_for


def _per_row(scores: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    return metrics.scores_per_row(scores, targets, ("hit_at_1", "ndcg_at_10"))


def _report(
    per_row: dict[str, dict[str, np.ndarray]], keep: np.ndarray, seed: int, first: str | None = None
) -> dict:
    """Each model's Hit@1 and NDCG@10 on the kept rows, and its paired differences to cf and the best floor (and
    to ``first``, the first trained run, when there are several)."""
    out = {}
    floors = {m: per_row[m]["hit_at_1"][keep].mean() for m in ("text_overlap", "cf_text")}
    best_floor = max(floors, key=floors.get)
    for model, values in per_row.items():
        entry = {
            metric: {
                "value": float(v[keep].mean()),
                "ci": metrics.interval(metric, v[keep], 1000, 0.95, seed),
                "n": int(keep.sum()),
            }
            for metric, v in values.items()
        }
        for reference in ("cf", best_floor, *([first] if first else [])):
            if reference != model:
                entry[f"minus_{reference}"] = {
                    metric: metrics.paired_bootstrap(
                        v[keep], per_row[reference][metric][keep], 1000, 0.95, seed
                    )
                    for metric, v in values.items()
                }
        out[model] = entry
    return {"best_floor": best_floor, "models": out}


def _plot(result: dict, path: Path, label: str) -> None:
    """Hit@1 of each trained run with its interval, ``cf`` and the best floor as horizontal lines; one panel for
    all rows and one for the cold view (a learning curve when the runs are a ``--sweep``)."""
    from matplotlib.figure import Figure

    views = [k for k in ("all_rows", *(k for k in result if k.startswith("cold_targets"))) if result.get(k)]
    runs = list(result["training"])
    figure = Figure(figsize=(5 * len(views), 3.6), layout="constrained")
    for axis, view in zip(figure.subplots(1, len(views), squeeze=False)[0], views, strict=True):
        models = result[view]["models"]
        floor = result[view]["best_floor"]
        x = list(range(len(runs)))
        values = [models[r]["hit_at_1"]["value"] for r in runs]
        low = [v - models[r]["hit_at_1"]["ci"][0] for v, r in zip(values, runs, strict=True)]
        high = [models[r]["hit_at_1"]["ci"][1] - v for v, r in zip(values, runs, strict=True)]
        axis.errorbar(x, values, yerr=[low, high], marker="o", capsize=3, label="trained (95% interval)")
        for name, style in (("cf", "--"), (floor, ":")):
            axis.axhline(models[name]["hit_at_1"]["value"], linestyle=style, color="grey", label=name)
        axis.set_xticks(x, [r.split("@", 1)[-1] for r in runs])
        axis.set_xlabel(label)
        axis.set_ylabel("Hit@1")
        axis.set_title(f"{view} (n={models['cf']['hit_at_1']['n']}, validation)")
        axis.legend(fontsize="small")
    figure.savefig(path, dpi=120)


def _with(stage2: dict, key: str, value: str) -> dict:
    """``stage2`` with the dotted ``key`` (under ``stage2``) set to ``value``, parsed as YAML (``null``, ``5``)."""
    *path, leaf = key.split(".")
    out = copy.deepcopy(stage2)
    node = out
    for part in path:
        node = node[part]
    if leaf not in node:
        raise SystemExit(f"--sweep: stage2.{key} is not a parameter")
    node[leaf] = yaml.safe_load(value)
    return out


@torch.no_grad()
def _gate_grid(recommender, samples) -> list[dict]:
    """Hit@1 over all rows, over the rows whose target is cold (the model's ``gate_max_count``) and over the
    others at every point of the count gate's grid (the head's scores computed once)."""
    head = torch.cat([recommender.head_scores(samples[i : i + 4]) for i in range(0, len(samples), 4)])
    table, _ = gate_table(recommender, head, samples)
    return [{"gate": g.tolist(), **figures} for g, figures in table]  # rows: other candidates, cold ones


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants", default="a_llmrec,no_cf_skip", help="comma-separated stage2.variants keys"
    )
    parser.add_argument("--rows", type=int, default=300, help="seeded overall validation rows")
    parser.add_argument(
        "--cold-max-count", type=int, default=5, help="cold view: targets with <= N interactions"
    )
    parser.add_argument(
        "--gate-grid",
        action="store_true",
        help="for count-gated variants, also Hit@1 on these rows (all, cold targets by the model's gate_max_count, "
        "the others) at every point of the gate's grid (llm.training.gate_points)",
    )
    parser.add_argument(
        "--sweep",
        help="stage2 key (dotted, under stage2) and values: trains the first variant once per value, e.g. "
        "training.head_warmup_users=250:500:1000:1500 (a learning curve against the samples the head reads)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        help="also draw each run's Hit@1 (95%% interval) against cf and the best floor here",
    )
    parser.add_argument(
        "--held-out",
        action="store_true",
        help="leave out the validation rows stage 2 itself chooses on (its epoch and its count gate: the first "
        "max(max_valid_rows, gate_valid_rows)), so that the figures are out of sample",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--params", default="", help="runtime params as kedro run takes them (key=value,...)")
    parser.add_argument("--out", type=Path, help="also write the JSON line here")
    args = parser.parse_args()

    catalog, runtime = run_catalog(args.params)
    load = catalog.load
    stage2, seed = load("params:stage2"), int(load("params:seed"))
    item_index, items, candidates = load("item_index"), load("items"), load("eval_candidates")
    rows = candidates[(candidates["scenario"] == "overall") & (candidates["split"] == "valid")]
    if args.held_out:
        rows = rows.iloc[Stage2TrainingConfig(**stage2["training"]).valid_rows_read :]
    rows = rows.reset_index(drop=True)
    if len(rows) > args.rows:
        pick = rng_for(args.seed, "bench/stage2_variants").choice(len(rows), args.rows, replace=False)
        rows = rows.iloc[np.sort(pick)].reset_index(drop=True)
    backbone = load_backbone(load("cf_model"), expected_n_items=len(item_index))
    domain = Domain(titles=item_titles(items, item_index))
    vector_frame = title_vector_frame(catalog)
    vectors = title_vector_table(vector_frame, len(item_index))
    targets = np.array(
        [list(c).index(t) for c, t in zip(rows["candidates"], rows["target_item_idx"], strict=True)]
    )
    cf = score_cf(backbone, rows, domain).scores
    overlap = score_text_overlap(
        rows, domain, load("params:evaluate_scenarios")["floors"]["n_history"]
    ).scores
    choice, _ = choose_cf_text_weight(
        load("cf_model"), candidates, items, item_index, load("params:evaluate_scenarios")
    )
    per_row = {
        "cf": _per_row(cf, targets),
        "text_overlap": _per_row(overlap, targets),
        "cf_text": _per_row(text_floors.fuse(cf, overlap, choice["weight"]), targets),
    }
    counts = popularity_counts(load("item_popularity"), len(item_index))
    users = user_vectors(backbone, list(rows["history"]))
    samples = row_samples(rows, users, cf, counts)
    _, model, tokenizer = load_llm(load("params:llms"), load("params:llm"))
    training, gate_grid = {}, {}
    runs = [(v, v, stage2) for v in args.variants.split(",")]
    if (
        args.sweep
    ):  # one run of the first variant per value of one stage2 key (a learning curve, a knob's range)
        key, values = args.sweep.split("=", 1)
        runs = [(runs[0][0], f"{runs[0][0]}@{v}", _with(stage2, key, v)) for v in values.split(":")]
    for variant, name, settings in runs:
        started = time.perf_counter()
        checkpoint, curves, report = train_projectors(
            load("cf_model"),
            load("joint_item_embeddings"),
            load("train_sequences"),
            load("sequences"),
            candidates,
            item_index,
            items,
            vector_frame,
            load("item_popularity"),
            settings,
            load("params:llms"),
            load("params:llm"),
            load("params:dataset"),
            seed,
            {"dir": None, "stage2_every_steps": 1},  # a bench measures whole runs: no checkpoints
            variant=variant,
        )
        seconds = time.perf_counter() - started
        table = item_table(
            merge_variant(settings, variant)["item_source"], load("joint_item_embeddings"), backbone
        )
        recommender = recommender_from_checkpoint(
            checkpoint, model, tokenizer, table, domain.titles, title_vectors=vectors
        )
        started = time.perf_counter()
        per_row[name] = _per_row(candidate_scores(recommender, samples, 4, desc=name), targets)
        if args.gate_grid and recommender.gated:
            gate_grid[name] = _gate_grid(recommender, samples)
        training[name] = {
            "train_seconds": seconds,
            "score_seconds_per_row": (time.perf_counter() - started) / len(samples),
            "training_users": report["training_users"],
            "head_warmup": report["head_warmup"],
            "gate": {k.removeprefix("gate_"): v for k, v in curves.items() if k.startswith("gate_")} or None,
        }
    cold = counts[rows["target_item_idx"].to_numpy()] <= args.cold_max_count
    first = runs[0][1] if len(runs) > 1 else None  # every later run is also compared with it, row by row
    line = emit(
        {
            "bench": "stage2_variants",
            "rows": len(rows),
            "split": "valid",
            "held_out": args.held_out,
            "params": runtime,
            "cf_text_weight": choice["weight"],
            "training": training,
            "all_rows": _report(per_row, np.ones(len(rows), dtype=bool), args.seed, first),
            f"cold_targets_le_{args.cold_max_count}": _report(per_row, cold, args.seed, first)
            if cold.sum()
            else None,
            **({"gate_grid": gate_grid} if gate_grid else {}),
        },
        args.out,
        default=float,
    )
    if args.plot:
        _plot(json.loads(line), args.plot, args.sweep.split("=", 1)[0] if args.sweep else "variant")


if __name__ == "__main__":
    main()
