"""Stage-2 training step time against its floor, a bare LLM forward+backward, in fp32 and bf16.

    .venv/bin/python bench/stage2.py [--steps 6] [--objective embedding_head] [--head-layer K]

Uses the embedded SmolLM2-135M and the shipped Beauty titles (run ``make run`` or the pipelines up to
``split_sequences`` first). Each step is a batch of 4 real prompts (10 history items, 20 candidates). The floor
is the frozen LLM's forward and backward on exactly the same ``inputs_embeds`` shapes with gradients to the
inputs only, which any soft-prompt method must pay. Prints one JSON line: median seconds per step for ours and
the floor, their ratio, and training samples/s, for each dtype. With ``--head-layer K`` the step reads the
hidden states after K layers, the floor runs the same K layers, and the bare pass of all layers is timed too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from _common import ROOT, latest

from allmrec_pipeline.llm.inputs import item_titles
from allmrec_pipeline.llm.layers import first_layers
from allmrec_pipeline.llm.loading import LLMSpec, cpu_has_fast_bf16, load_frozen_llm, resolve_device
from allmrec_pipeline.llm.prompt import PromptTemplate
from allmrec_pipeline.llm.recommender import LEGACY_STAGE2, Sample, SoftPromptRecommender, Stage2Config
from allmrec_pipeline.schema import base_parameters


def make_samples(n: int, n_items: int, rng: np.random.Generator) -> list[Sample]:
    return [
        Sample(
            torch.randn(50),
            rng.integers(1, n_items + 1, 10).tolist(),
            rng.choice(np.arange(1, n_items + 1), 20, replace=False).tolist(),
            int(rng.integers(0, 20)),
        )
        for _ in range(n)
    ]


def timed(fn, steps: int) -> float:
    def run() -> None:
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # GPU work is asynchronous: time it to completion

    run()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(dtype: str, titles: list[str], params: dict, args: argparse.Namespace) -> dict:
    model, tokenizer = load_frozen_llm(
        LLMSpec(
            **{**base_parameters()["llms"][base_parameters()["llm"]], "dtype": dtype, "device": args.device}
        )
    )
    torch.manual_seed(0)
    table = torch.randn(len(titles), 128)
    norm = float(model.get_input_embeddings().weight.float().norm(dim=1).mean())
    config = Stage2Config(
        **{
            **LEGACY_STAGE2,
            "objective": args.objective,
            "soft_token_norm": norm,
            "head_layer": args.head_layer,
        }
    )
    template = PromptTemplate(**params["template"])
    rec = SoftPromptRecommender(
        model, tokenizer, template, params["wording"]["beauty"], table, titles, 50, config
    )
    optimizer = torch.optim.Adam([p for p in rec.parameters() if p.requires_grad], lr=1e-4)
    batch = make_samples(4, len(titles) - 1, np.random.default_rng(0))

    def ours() -> None:
        loss = rec.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    prompts = rec.prompts(batch, with_answer=args.objective == "lm")
    embeds = prompts.inputs_embeds.detach()
    inputs = {"attention_mask": prompts.attention_mask, "position_ids": prompts.position_ids}

    def floor(n_layers: int | None = args.head_layer) -> None:  # the same pass, gradients to the inputs only
        leaf = embeds.clone().requires_grad_(True)
        if args.objective == "embedding_head":
            with first_layers(model, n_layers):
                hidden = model.base_model(inputs_embeds=leaf, **inputs).last_hidden_state
            hidden[:, -1].float().sum().backward()
        else:
            model(inputs_embeds=leaf, **inputs).logits.float().logsumexp(-1).mean().backward()

    ours_s, floor_s = timed(ours, args.steps), timed(floor, args.steps)
    out = {
        "prompt_tokens": int(embeds.shape[1]),
        "ours_seconds_per_step": ours_s,
        "floor_seconds_per_step": floor_s,
        "ratio_ours_to_floor": ours_s / floor_s,
        "samples_per_s": 4 / ours_s,
    }
    if args.head_layer is not None:  # what reading an earlier layer saves: the whole LLM's bare pass
        out["all_layers_floor_seconds_per_step"] = timed(lambda: floor(None), args.steps)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--objective", default="embedding_head", choices=["embedding_head", "lm", "listwise"])
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--device", default="auto", help="auto: the GPU when there is one")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="project root holding data/ (default: this one)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--head-layer",
        type=int,
        help="embedding_head: read the hidden states after this many layers (default: all, unlike the config)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = yaml.safe_load((ROOT / "conf/base/parameters_stage2.yml").read_text())["stage2"]
    item_index = pd.read_parquet(latest("data/03_primary/beauty/item_index.parquet/*/*.parquet", args.root))
    items = pd.read_parquet(latest("data/02_intermediate/beauty/items.parquet/*/*.parquet", args.root))
    titles = item_titles(items, item_index)
    out = {
        "objective": args.objective,
        "head_layer": args.head_layer,
        "batch_size": 4,
        "device": resolve_device(args.device),
        "cpu_fast_bf16": cpu_has_fast_bf16(),
    }
    for dtype in args.dtypes.split(","):
        out[dtype] = measure(dtype, titles, params, args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
