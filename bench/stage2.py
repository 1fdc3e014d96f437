"""Stage-2 training step time against its floor, a bare LLM forward+backward, in fp32 and bf16.

    .venv/bin/python bench/stage2.py [--steps 6] [--objective embedding_head] [--head-layer K]
    python bench/stage2.py --batch-sizes 4,32,128 --dtypes bfloat16 --head-layer 12 --head-reads titles \
        --llm-config DIR --root DIR      # a GPU machine: the LLM's shape from DIR, random weights

Uses the embedded SmolLM2-135M and the shipped Beauty titles (run ``make run`` or the pipelines up to
``split_sequences`` first). Each step is a batch of real prompts (10 history items, 20 candidates; 4 by default).
The floor is the frozen LLM's forward and backward on exactly the same ``inputs_embeds`` shapes with gradients to
the inputs only, which any soft-prompt method must pay. Prints one JSON line: for each dtype, the median seconds
per step for ours and the floor, their ratio, and training samples/s (the first batch size's at the top level;
every batch size's under ``by_batch_size``, with the no-grad scoring rate, ``embedding_head`` only, and the model
FLOP utilisation). With ``--head-layer K`` the step reads the hidden states after K layers, the floor runs the
same K layers, and the bare pass of all layers is timed too.

Model FLOPs per sample count the transformer blocks run as 6 × their parameters × the prompt's tokens (forward,
and backward to the activations and weights, the usual convention even though the frozen weights get no
gradients); MFU is that rate against ``--peak-tflops`` (default: 790, the bf16 matrix rate measured on an H200).
``--llm-config DIR`` builds the LLM from the ``config.json`` and tokenizer in DIR with random weights (timing
only: no figure of quality), for a machine that lacks the embedded GGUF; ``bench/llm_config.py`` writes DIR.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from _common import ROOT, emit, latest

from allmrec_pipeline.llm.inputs import item_titles
from allmrec_pipeline.llm.layers import first_layers
from allmrec_pipeline.llm.loading import (
    LLMSpec,
    cpu_has_fast_bf16,
    load_frozen_llm,
    resolve_device,
    resolve_dtype,
)
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


def random_llm(folder: Path, dtype: str, device: str):
    """The LLM of ``folder``'s ``config.json`` with random weights, and its tokenizer (timing only)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
    device = resolve_device(device)
    model.to(device=device, dtype=resolve_dtype(dtype, device)).eval().requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def block_parameters(model, n_layers: int | None) -> int:
    """Parameters of the transformer blocks a pass runs (the first ``n_layers``; all when None)."""
    layers = model.base_model.layers
    return sum(p.numel() for layer in list(layers)[: n_layers or len(layers)] for p in layer.parameters())


def measure(dtype: str, titles: list[str], params: dict, args: argparse.Namespace) -> dict:
    if args.llm_config:
        model, tokenizer = random_llm(args.llm_config, dtype, args.device)
    else:
        model, tokenizer = load_frozen_llm(
            LLMSpec(
                **{
                    **base_parameters()["llms"][base_parameters()["llm"]],
                    "dtype": dtype,
                    "device": args.device,
                }
            )
        )
    torch.manual_seed(0)
    table = torch.randn(len(titles), 128)
    norm = float(model.get_input_embeddings().weight.float().norm(dim=1).mean())
    overrides = (params["variants"].get(args.variant) or {}).get("model", {}) if args.variant else {}
    config = Stage2Config(
        **{
            **LEGACY_STAGE2,
            "objective": args.objective,
            "soft_token_norm": norm,
            "head_layer": args.head_layer,
            "head_reads": args.head_reads,
            # a variant's model keys, with conf/base's values of the keys it needs (LoRA's settings)
            **{k: v for k, v in params["model"].items() if k.startswith("lora_")},
            **{
                k: v
                for k, v in overrides.items()
                if k not in ("cf_skip", "gate_max_count", "gate_text_overlap", "gate_text_cosine")
            },
        }
    )
    template = PromptTemplate(**params["template"])
    rec = SoftPromptRecommender(
        model, tokenizer, template, params["wording"]["beauty"], table, titles, 50, config
    )
    optimizer = torch.optim.Adam([p for p in rec.parameters() if p.requires_grad], lr=1e-4)
    flop_params = 6 * block_parameters(
        rec.llm, args.head_layer if config.objective == "embedding_head" else None
    )
    by_size = [
        measure_batch(rec, optimizer, model, size, len(titles), flop_params, args)
        for size in args.batch_sizes
    ]
    return {**{k: v for k, v in by_size[0].items() if k != "batch_size"}, "by_batch_size": by_size}


def measure_batch(rec, optimizer, model, size: int, n_titles: int, flop_params: int, args) -> dict:
    batch = make_samples(size, n_titles - 1, np.random.default_rng(0))

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

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    ours_s = timed(ours, args.steps)
    peak_gb = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    floor_s = timed(floor, args.steps)
    tokens = int(prompts.attention_mask.sum()) / size  # real (unpadded) tokens per prompt
    out = {
        "batch_size": size,
        "prompt_tokens": int(embeds.shape[1]),
        "ours_seconds_per_step": ours_s,
        "floor_seconds_per_step": floor_s,
        "ratio_ours_to_floor": ours_s / floor_s,
        "samples_per_s": size / ours_s,
        "step_peak_gpu_memory_gb": peak_gb,  # the most torch allocated on the GPU in a training step
        "model_flop_per_sample": flop_params * tokens,
        "mfu": flop_params * tokens * size / ours_s / (args.peak_tflops * 1e12),
    }
    if args.profile and size == args.batch_sizes[-1]:  # where one step's time goes, by operator
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        with profile(activities=activities) as prof:
            timed(ours, 1)
        sort = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
        table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=30)
        args.profile.write_text(
            f"batch {size}, by CPU time\n{table}\n\nby {sort}\n"
            + prof.key_averages().table(sort_by=sort, row_limit=20)
        )

    def score() -> None:  # evaluation: no-grad scores of the batch (rank mode: one prompt at a time)
        with torch.no_grad():
            rec.head_scores(batch) if rec.config.objective == "embedding_head" else rec.title_scores(batch)

    out["scoring_rows_per_s"] = size / timed(score, args.steps)
    out["trainable_parameters"] = sum(p.numel() for p in rec.parameters() if p.requires_grad)
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
    parser.add_argument("--batch-sizes", default="4", help="comma-separated prompts per step")
    parser.add_argument(
        "--head-reads", default="soft_tokens", choices=["soft_tokens", "titles", "title_tokens"]
    )
    parser.add_argument(
        "--peak-tflops", type=float, default=790.0, help="the chip's bf16 matrix rate, for MFU"
    )
    parser.add_argument(
        "--variant",
        help="a stage2.variants key whose model keys apply (e.g. tallrec: titles-only prompts and LoRA; its "
        "objective replaces --objective); the CF skip and the count gate are left out (no CF logits here)",
    )
    parser.add_argument("--llm-config", type=Path, help="LLM config + tokenizer folder: random weights")
    parser.add_argument("--out", type=Path, help="also write the JSON line here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write a torch.profiler table of one step (the last batch size, the last dtype)",
    )
    args = parser.parse_args()
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    torch.set_num_threads(args.threads)
    params = yaml.safe_load((ROOT / "conf/base/parameters_stage2.yml").read_text())["stage2"]
    item_index = pd.read_parquet(latest("data/03_primary/beauty/item_index.parquet/*/*.parquet", args.root))
    items = pd.read_parquet(latest("data/02_intermediate/beauty/items.parquet/*/*.parquet", args.root))
    titles = item_titles(items, item_index)
    if args.variant:
        if args.variant not in params["variants"]:
            raise SystemExit(f"--variant: no stage2.variants.{args.variant} in conf/base")
        args.objective = (
            (params["variants"][args.variant] or {}).get("model", {}).get("objective", args.objective)
        )
    out = {
        "variant": args.variant,
        "objective": args.objective,
        "head_layer": args.head_layer,
        "head_reads": args.head_reads,
        "batch_size": args.batch_sizes[0],
        "device": resolve_device(args.device),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "random_weights": args.llm_config is not None,
        "cpu_fast_bf16": cpu_has_fast_bf16(),
    }
    for dtype in args.dtypes.split(","):
        out[dtype] = measure(dtype, titles, params, args)
    emit(out, args.out)


if __name__ == "__main__":
    main()
