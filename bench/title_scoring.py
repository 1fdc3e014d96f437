"""How rank mode scores a candidate title: ``llm_only`` under each answer form and length rule, same rows.

The prompt writes a candidate as ``"Title"``; rank mode can score the continuation ``' "Title"'`` (``quoted``,
the prompt's tokens) or ``' Title'`` (``plain``: byte-level BPE then splits the first word differently), by the
mean or the sum of its token log-probabilities. Every variant scores the same seeded rows (``overall``
validation rows by default, so the choice is never made on test rows), and each is compared with the first
variant by a paired bootstrap. Each answer form is scored once (token log-probabilities summed); the mean
divides that sum by the answer's token count, exactly as ``length_normalize`` does.

Inputs come from the latest run through a KedroSession and the catalog (``make run`` first); parameters are
the run's (``conf/base`` + ``conf/local``), the variants override ``stage2.model``.

    python bench/title_scoring.py --rows 300 --split valid --variants plain:mean,quoted:mean,plain:sum,quoted:sum

Prints one JSON line; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import emit, run_catalog
from tqdm.auto import tqdm

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.inputs import (
    build_recommender,
    embedding_table,
    item_titles,
    load_llm,
    row_samples,
    user_vectors,
    wording_for,
)
from allmrec_pipeline.llm.scoring import score_continuations
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.seeding import rng_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300, help="seeded rows scored by every variant")
    parser.add_argument(
        "--split", choices=["valid", "test"], default="valid", help="overall rows of this split"
    )
    parser.add_argument(
        "--variants",
        default="plain:mean,quoted:mean,plain:sum,quoted:sum",
        help="comma-separated title_format:length_rule pairs (mean | sum); the first is the reference",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--params", default="", help="runtime params as kedro run takes them (key=value,...)")
    parser.add_argument("--out", type=Path, help="also write the JSON line here")
    args = parser.parse_args()

    catalog, runtime = run_catalog(args.params)
    stage2, llms, llm = catalog.load("params:stage2"), catalog.load("params:llms"), catalog.load("params:llm")
    candidates = catalog.load("eval_candidates")
    item_index = catalog.load("item_index")
    rows = candidates[(candidates["scenario"] == "overall") & (candidates["split"] == args.split)]
    rows = rows.reset_index(drop=True)
    if len(rows) > args.rows:
        keep = np.sort(
            rng_for(args.seed, f"bench/title_scoring/{args.split}").choice(
                len(rows), args.rows, replace=False
            )
        )
        rows = rows.iloc[keep].reset_index(drop=True)
    backbone = load_backbone(catalog.load("cf_model"), expected_n_items=len(item_index))
    samples = row_samples(rows, user_vectors(backbone, list(rows["history"])))
    titles = item_titles(catalog.load("items"), item_index)
    table = embedding_table(catalog.load("joint_item_embeddings"), "e")
    _, model, tokenizer = load_llm(llms, llm)
    wording = wording_for(stage2, catalog.load("params:dataset"))

    variants = [tuple(v.split(":")) for v in args.variants.split(",")]
    sums, seconds = {}, {}
    for title_format in dict.fromkeys(f for f, _ in variants):
        overrides = {
            "use_user": False,
            "item_tokens": "none",
            "objective": "lm",
            "cf_skip": False,
            "gate_text_overlap": False,
            "gate_text_cosine": False,
            "gate_cooccurrence": False,
            "title_format": title_format,
        }
        recommender = build_recommender(
            model, tokenizer, stage2, wording, table, titles, backbone.hidden_size, overrides
        ).eval()
        started = time.perf_counter()
        with torch.no_grad():
            sums[title_format] = np.stack(
                [
                    score_continuations(
                        recommender.llm,
                        recommender.prompts([s]),
                        [[recommender.answer_ids[c] for c in s.candidates]],
                        normalize=False,
                    )[0].numpy()
                    for s in tqdm(samples, desc=title_format)
                ]
            )
        seconds[title_format] = time.perf_counter() - started
        lengths = np.array([[len(recommender.answer_ids[c]) for c in s.candidates] for s in samples])
        sums[f"{title_format}/lengths"] = lengths
    results, per_row = {}, {}
    targets = np.array([s.target_pos for s in samples])
    for title_format, rule in variants:
        variant = f"{title_format}:{rule}"
        scores = sums[title_format] / (sums[f"{title_format}/lengths"] if rule == "mean" else 1.0)
        values = metrics.scores_per_row(scores, targets)
        per_row[variant] = values
        summary = metrics.summarize({k: values[k] for k in ("hit_at_1", "ndcg_at_10")}, 1000, 0.95, args.seed)
        results[variant] = {**summary, "seconds_per_row": seconds[title_format] / len(samples)}
    reference = args.variants.split(",")[0]
    for variant, result in results.items():
        if variant != reference:
            result["minus_reference"] = {
                m: metrics.paired_bootstrap(per_row[variant][m], per_row[reference][m], 1000, 0.95, args.seed)
                for m in ("hit_at_1", "ndcg_at_10")
            }
    emit(
        {
            "bench": "title_scoring",
            "model": "llm_only",
            "llm": llm,
            "split": args.split,
            "rows": len(samples),
            "reference": reference,
            "variants": results,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
