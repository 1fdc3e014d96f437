"""Rank-mode evaluation speed: prefix-cache scoring against 20 full prompts per user, same scores.

    .venv/bin/python bench/evaluate.py [--users 8] [--repeats 2] [--batch-size 4]

LLM-only rank mode with the embedded SmolLM2 on frozen Beauty test rows (``overall``; run ``make run`` or the
pipelines up to ``split_sequences`` first): each user's 20 candidate titles are scored by their
length-normalised log-likelihood after the prompt. Ours computes the prompt once and reuses its key/value
cache for the 20 titles, one user at a time (``cached``, as evaluation and ``listwise`` training run it) or
``--batch-size`` users per padded pass (``cached_batched``); the naive way runs one full prompt per candidate. Prints one
JSON line: users/s for each (median over interleaved repeats), the speed-ups, and the largest score difference.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _common import run_catalog

from allmrec_pipeline.llm.inputs import item_titles
from allmrec_pipeline.llm.loading import LLMSpec, load_frozen_llm
from allmrec_pipeline.llm.prompt import PromptTemplate
from allmrec_pipeline.llm.recommender import LEGACY_STAGE2, Sample, SoftPromptRecommender, Stage2Config
from allmrec_pipeline.llm.scoring import score_continuations, score_continuations_naive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4, help="users per pass in the batched way")
    parser.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16")
    parser.add_argument("--params", default="", help="runtime params as kedro run takes them (key=value,...)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    catalog, _ = run_catalog(args.params)
    params = catalog.load("params:stage2")
    item_index, items = catalog.load("item_index"), catalog.load("items")
    rows = catalog.load("eval_candidates")
    rows = rows[(rows["scenario"] == "overall") & (rows["split"] == "test")].head(args.users)
    titles = item_titles(items, item_index)
    model, tokenizer = load_frozen_llm(
        LLMSpec(**{**catalog.load("params:llms")[catalog.load("params:llm")], "dtype": args.dtype})
    )
    config = Stage2Config(**{**LEGACY_STAGE2, "objective": "lm", "use_user": False, "item_tokens": "none"})
    rec = SoftPromptRecommender(
        model,
        tokenizer,
        PromptTemplate(**params["template"]),
        params["wording"][catalog.load("params:dataset")],
        torch.zeros(len(titles), 8),
        titles,
        8,
        config,
    )
    samples = [
        Sample(torch.zeros(8), list(map(int, h)), list(map(int, c)), 0)
        for h, c in zip(rows["history"], rows["candidates"], strict=True)
    ]

    def run(scorer, batch_size: int) -> tuple[float, torch.Tensor]:
        start = time.perf_counter()
        with torch.no_grad():
            scores = [
                scorer(
                    model,
                    rec.prompts(samples[i : i + batch_size]),
                    [[rec.answer_ids[c] for c in s.candidates] for s in samples[i : i + batch_size]],
                    True,
                )
                for i in range(0, len(samples), batch_size)
            ]
        return time.perf_counter() - start, torch.cat(scores)

    ways = {
        "naive": (score_continuations_naive, 1),
        "cached": (score_continuations, 1),
        "cached_batched": (score_continuations, args.batch_size),
    }
    run(score_continuations, args.batch_size)  # warm-up
    times, scores = {name: [] for name in ways}, {}
    for _ in range(args.repeats):  # interleaved, so a slow spell of the machine hits every way alike
        for name, (scorer, batch_size) in ways.items():
            seconds, scores[name] = run(scorer, batch_size)
            times[name].append(seconds)
    # the ways round differently (a cache vs a full pass, padded rows vs not), more coarsely in bf16
    diff = {
        "cached_vs_naive": float((scores["cached"] - scores["naive"]).abs().max()),
        "batched_vs_cached": float((scores["cached_batched"] - scores["cached"]).abs().max()),
    }
    same_top = (scores["cached_batched"].argmax(dim=1) == scores["cached"].argmax(dim=1)).float().mean()
    median = {k: float(np.median(v)) for k, v in times.items()}
    print(
        json.dumps(
            {
                "users": len(samples),
                "candidates": 20,
                "batch_size": args.batch_size,
                "dtype": str(next(model.parameters()).dtype),
                **{f"{name}_users_per_s": len(samples) / median[name] for name in ways},
                "speedup": median["naive"] / median["cached"],
                "batched_speedup": median["cached"] / median["cached_batched"],
                "runs_seconds": times,
                "max_abs_score_difference": diff,
                "share_of_users_with_the_same_top_candidate_batched_vs_cached": float(same_top),
            }
        )
    )


if __name__ == "__main__":
    main()
