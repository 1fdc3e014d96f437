"""Stage-1 seconds per epoch on the shipped Beauty: ours against the naive variant, same seed, same losses.

    .venv/bin/python bench/stage1.py [--examples 3000|all] [--repeats 2] [--trainable-layers config|all|N]

Needs ``pretrain_cf`` outputs (``make run`` or ``kedro run --pipelines pretrain_cf``). Both variants train the
same alignment networks and fine-tune the embedded MiniLM (the layers ``stage1.sbert.trainable_layers`` names,
frozen ones in eval mode) from the same seed over the same ``--examples`` training examples, by default the
default run's epoch (``stage1.training.max_examples``, 3,000); ``--examples all`` times a full epoch, every
training user's last item once (the paper's epoch and ``conf/paper``'s):

- naive, as the authors' code: every step tokenizes the batch's texts again, makes one SBERT call for the
  positives and one for the negatives (each padded to its longest text, through every layer), recomputes
  ``x_u`` with the frozen backbone, and steps a plain ``torch.optim.Adam``;
- ours: texts tokenized once, one SBERT call per length-sorted chunk of the batch's distinct items, the frozen
  layers' output cached per item (``cache_frozen_layers``), ``x_u`` computed once for all users before
  training (counted in its time), a fused Adam step.

The timed runs use SBERT as configured (dropout on in its trainable layers), interleaved, medians reported.
Then both variants run once more with SBERT's dropout off: no random numbers are drawn inside SBERT, so their
losses must agree (with dropout on, each variant draws its masks in its own batch shapes). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import torch
from _common import run_catalog

from allmrec_pipeline.models.alignment import AlignmentConfig, CollaborativeTextAlignment
from allmrec_pipeline.models.alignment_training import (
    Stage1TrainingConfig,
    frozen_user_signal,
    train_alignment,
)
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.models.data import pad_left
from allmrec_pipeline.models.text_encoder import (
    CachedTextEncoder,
    disable_dropout,
    load_sentence_transformer,
    set_trainable_layers,
)
from allmrec_pipeline.pipelines.stage1.nodes import render_item_texts


class NaiveTextEncoder(CachedTextEncoder):
    """The authors' way: tokenize at every step; one SBERT call per column (positives, then negatives)."""

    def __init__(self, sbert, texts, max_tokens: int) -> None:
        super().__init__(sbert, texts, max_tokens)
        self.texts, self.max_tokens = list(texts), max_tokens

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        if items.dim() == 1:  # the per-epoch diagnostics (not timed): the shared path
            return super().forward(items)
        columns = []
        for k in range(items.shape[1]):
            features = self.sbert.tokenizer(
                [self.texts[i] for i in items[:, k].tolist()],
                truncation=True,
                max_length=self.max_tokens,
                padding=True,
                return_tensors="pt",
            )
            columns.append(self.sbert(dict(features))["sentence_embedding"])
        return torch.stack(columns, dim=1)


def run(variant: str, backbone, texts, sequences, params, args, dropout: bool = True) -> dict:
    torch.manual_seed(args.seed)
    sbert = load_sentence_transformer("embedded")
    set_trainable_layers(sbert, bool(params["sbert"]["freeze"]), params["sbert"]["trainable_layers"])
    if not dropout:  # no random numbers drawn inside SBERT: the two variants' losses must then agree
        disable_dropout(sbert)
    max_tokens = int(params["text"]["max_tokens"])
    if variant == "naive":
        encoder = NaiveTextEncoder(sbert, texts, max_tokens)
    else:
        encoder = CachedTextEncoder(
            sbert,
            texts,
            max_tokens,
            chunk_size=int(params["sbert"]["chunk_size"]),
            cache_frozen_layers=bool(params["sbert"]["cache_frozen_layers"]),
        )
    torch.manual_seed(args.seed)
    alignment = CollaborativeTextAlignment(
        backbone.hidden_size, encoder.dim, AlignmentConfig(**params["alignment"])
    )
    started = time.perf_counter()
    signal = frozen_user_signal(backbone, sequences, all_items=False)
    setup = time.perf_counter() - started
    user_vectors = None
    if variant == "naive":
        usable = [s for s in sequences if len(s) >= 2]
        histories = torch.from_numpy(pad_left([s[:-1] for s in usable], backbone.config.max_seq_len))

        def user_vectors(idx: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return backbone.user_representation(histories[idx])

    config = Stage1TrainingConfig(
        **{
            **params["training"],
            "epochs": 1,
            "frozen_text_epochs": 0,
            "max_examples": args.examples,
            "all_items": False,
        }
    )
    result = train_alignment(
        alignment,
        backbone,
        encoder,
        signal,
        config,
        args.seed,
        progress=False,
        user_vectors=user_vectors,
        fused_adam=variant != "naive",  # the authors' plain torch.optim.Adam
    )
    seconds = result.seconds[0] + (
        0.0 if variant == "naive" else setup
    )  # ours pays its one-off precomputation
    examples = len(signal.positives) if args.examples is None else min(args.examples, len(signal.positives))
    return {"seconds": seconds, "examples": examples, "history": result.history}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--examples",
        type=lambda v: None if v == "all" else int(v),
        default=3000,
        help="training examples in the timed epoch (a seeded slice), or 'all' for a full epoch",
    )
    parser.add_argument("--backbone", default="sasrec")
    parser.add_argument("--params", default="", help="runtime params as kedro run takes them (key=value,...)")
    parser.add_argument(
        "--trainable-layers",
        default="config",
        help="SBERT layers fine-tuned in both variants: 'config' (stage1.sbert.trainable_layers), 'all', or N",
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="interleaved runs of each variant; medians reported"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    torch.set_num_threads(2)
    catalog, _ = run_catalog(f"backbone={args.backbone}" + (f",{args.params}" if args.params else ""))
    params = catalog.load("params:stage1")
    if args.trainable_layers != "config":
        layers = None if args.trainable_layers == "all" else int(args.trainable_layers)
        params["sbert"]["trainable_layers"] = layers
    backbone = load_backbone(catalog.load("cf_model"))
    backbone.requires_grad_(False)
    item_index, items = catalog.load("item_index"), catalog.load("items")
    sequences = list(catalog.load("train_sequences")["items"])
    texts = render_item_texts(items, item_index, params["text"])
    runs = {"naive": [], "ours": []}
    for _ in range(args.repeats):
        for variant, timings in runs.items():
            timings.append(run(variant, backbone, texts, sequences, params, args))
    # The same slice once more with SBERT's dropout off in both: no random draws inside SBERT, so the losses of
    # the two variants must agree (with dropout on, each draws its masks in its own batch shapes).
    naive, ours = (run(v, backbone, texts, sequences, params, args, dropout=False)["history"] for v in runs)
    loss_keys = [k for k in naive if k.startswith("loss_")]
    max_diff = max(abs(a - b) for k in loss_keys for a, b in zip(naive[k], ours[k], strict=True))
    median = {v: float(np.median([r["seconds"] for r in rs])) for v, rs in runs.items()}
    print(
        json.dumps(
            {
                "examples": runs["ours"][0]["examples"],
                "backbone": args.backbone,
                "sbert_trainable_layers": params["sbert"]["trainable_layers"],
                "cache_frozen_layers": params["sbert"]["cache_frozen_layers"],
                "naive_seconds": median["naive"],
                "ours_seconds": median["ours"],
                "speedup_median": median["naive"] / median["ours"],
                "naive_runs_seconds": [round(r["seconds"], 2) for r in runs["naive"]],
                "ours_runs_seconds": [round(r["seconds"], 2) for r in runs["ours"]],
                "ours_examples_per_s": runs["ours"][0]["examples"] / median["ours"],
                "max_abs_loss_difference_dropout_off": max_diff,
                "losses_naive": {k: naive[k][0] for k in loss_keys},
                "losses_ours": {k: ours[k][0] for k in loss_keys},
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
