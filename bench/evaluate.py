"""Rank-mode evaluation speed: prefix-cache scoring against 20 full prompts per user, same scores.

    .venv/bin/python bench/evaluate.py [--users 8] [--repeats 2]

LLM-only rank mode with the embedded SmolLM2 on frozen Beauty test rows (``overall``; run ``make run`` or the
pipelines up to ``split_sequences`` first): each user's 20 candidate titles are scored by their
length-normalised log-likelihood after the prompt. Ours computes the prompt once and reuses its key/value
cache for the 20 titles; the naive way runs one full prompt per candidate. Prints one JSON line: users/s for
each (median over interleaved repeats), the speed-up, and the largest score difference.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
import yaml
from _common import ROOT, latest

from allmrec_pipeline.llm.loading import LLMSpec, load_frozen_llm
from allmrec_pipeline.llm.prompt import PromptTemplate
from allmrec_pipeline.llm.recommender import Sample, SoftPromptRecommender, Stage2Config
from allmrec_pipeline.llm.scoring import score_continuations, score_continuations_naive
from allmrec_pipeline.pipelines.stage2.nodes import item_titles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(2)
    params = yaml.safe_load((ROOT / "conf/base/parameters_stage2.yml").read_text())["stage2"]
    item_index = pd.read_parquet(latest("data/03_primary/beauty/item_index.parquet/*/*.parquet"))
    items = pd.read_parquet(latest("data/02_intermediate/beauty/items.parquet/*/*.parquet"))
    rows = pd.read_parquet(latest("data/05_model_input/beauty/eval_candidates.parquet/*/*.parquet"))
    rows = rows[(rows["scenario"] == "overall") & (rows["split"] == "test")].head(args.users)
    titles = item_titles(items, item_index)
    model, tokenizer = load_frozen_llm(LLMSpec())
    config = Stage2Config(objective="lm", use_user=False, item_tokens="none")
    rec = SoftPromptRecommender(
        model,
        tokenizer,
        PromptTemplate(**params["template"]),
        params["wording"]["beauty"],
        torch.zeros(len(titles), 8),
        titles,
        8,
        config,
    )
    samples = [
        Sample(torch.zeros(8), list(map(int, h)), list(map(int, c)), 0)
        for h, c in zip(rows["history"], rows["candidates"], strict=True)
    ]

    def run(scorer) -> tuple[float, list[torch.Tensor]]:
        start = time.perf_counter()
        with torch.no_grad():
            scores = [
                scorer(model, rec.prompts([s]), [rec.answer_ids[c] for c in s.candidates], True)
                for s in samples
            ]
        return time.perf_counter() - start, scores

    run(score_continuations)  # warm-up
    times = {"cached": [], "naive": []}
    for _ in range(args.repeats):
        for name, scorer in (("cached", score_continuations), ("naive", score_continuations_naive)):
            seconds, scores = run(scorer)
            times[name].append(seconds)
            if name == "cached":
                cached_scores = scores
            else:
                naive_scores = scores
    diff = max(float((a - b).abs().max()) for a, b in zip(cached_scores, naive_scores, strict=True))
    median = {k: float(np.median(v)) for k, v in times.items()}
    print(
        json.dumps(
            {
                "users": len(samples),
                "candidates": 20,
                "dtype": str(next(model.parameters()).dtype),
                "cached_users_per_s": len(samples) / median["cached"],
                "naive_users_per_s": len(samples) / median["naive"],
                "speedup": median["naive"] / median["cached"],
                "runs_seconds": times,
                "max_abs_score_difference": diff,
            }
        )
    )


if __name__ == "__main__":
    main()
