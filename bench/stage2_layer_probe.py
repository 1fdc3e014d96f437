"""Stage-2 layer probe: how much the ``embedding_head``'s frozen inputs are worth at each depth of the LLM.

    .venv/bin/python bench/stage2_layer_probe.py [--layers 0,2,...,30] [--head-seeds 0,1,2,3,4,5]
        [--valid-rows 300] [--seed 42] [--root DIR] [--dtype auto]

One no-grad forward pass per training sample (the stage-2 default's 100 capped users) and per validation row
keeps the hidden states of every layer (0: the input embeddings, i.e. the soft tokens themselves, whose
last-position query is the same for every user) under the seed's untrained projectors. For each layer, heads
are fitted on them as the warm-up fits them (``fit_head``: the held-out fifth, or 5 and 10 fixed epochs),
on the raw hidden states and layer-normed ones (what a final norm does to an earlier layer's output), and
scored on the cached rows. ``stage2.model.head_layer`` is the option this informs. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
from stage2_learning_curve import add_input_args, load_inputs

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.training import fit_head
from allmrec_pipeline.models.projectors import CandidateHead

RULES = {"held_out_fifth": (0.2, 100), "fixed_5_epochs": (0.0, 5), "fixed_10_epochs": (0.0, 10)}


def hit_rate(scores: np.ndarray, target_pos: np.ndarray) -> float:
    """Hit@1 as the project scores it (ties count in expectation), without the bootstrap of ``hit_figures``."""
    target = scores[np.arange(len(scores)), target_pos]
    return float(
        metrics.per_row_metrics(*metrics.target_rank_counts(scores, target), ("hit_at_1",))["hit_at_1"].mean()
    )


@torch.no_grad()
def all_layer_features(rec, samples, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K+1, N, H)`` last-position and ``(K+1, N, C, H)`` candidate hidden states of every layer."""
    rec.eval()
    last, cand = [], []
    for start in range(0, len(samples), batch_size):
        batch = rec.prompts(samples[start : start + batch_size])
        states = rec.llm.base_model(**batch.model_inputs(), output_hidden_states=True).hidden_states
        states = torch.stack(states).float()  # (K+1, B, L, H)
        last.append(states[:, :, -1])
        cand.append(
            torch.stack([states[:, row, pos["candidate"]] for row, pos in enumerate(batch.positions)], 1)
        )
    return torch.cat(last, 1), torch.cat(cand, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default=",".join(str(k) for k in range(0, 31, 2)))
    parser.add_argument("--head-seeds", default="0,1,2,3,4,5")
    parser.add_argument("--training-samples", type=int, default=100)
    add_input_args(parser)
    args = parser.parse_args()
    inputs = load_inputs(args, args.training_samples)
    torch.manual_seed(args.seed)  # the projectors' init, as in the learning curve and stage2's node
    rec = inputs.recommender({"objective": "embedding_head", "head_layer": None})
    train_last, train_cand = all_layer_features(rec, inputs.samples, args.batch_size)
    valid_last, valid_cand = all_layer_features(rec, inputs.valid, args.batch_size)
    targets = torch.as_tensor([s.target_pos for s in inputs.samples])
    valid_targets = torch.as_tensor(inputs.target_pos)
    out = {**inputs.out, "layers": []}
    for layer in (int(k) for k in args.layers.split(",")):
        row = {"layer": layer}
        for normed in (False, True):
            features = [x[layer] for x in (train_last, train_cand, valid_last, valid_cand)]
            if normed:
                features = [F.layer_norm(x, x.shape[-1:]) for x in features]
            fit_last, fit_cand, score_last, score_cand = features
            for rule, (holdout, epochs) in RULES.items():
                hits = []
                for head_seed in (int(s) for s in args.head_seeds.split(",")):
                    torch.manual_seed(head_seed)
                    head = CandidateHead(train_last.shape[-1], 128)
                    fit_head(head, fit_last, fit_cand, targets, epochs, 1e-3, head_seed, holdout=holdout)
                    with torch.no_grad():
                        scores = head(score_last, score_cand)
                    hits.append(hit_rate(scores.numpy(), valid_targets.numpy()))
                name = f"{'layer_normed' if normed else 'raw'}_{rule}"
                row[name] = {"mean_hit_at_1": float(np.mean(hits)), "std": float(np.std(hits)), "runs": hits}
        out["layers"].append(row)
        print(
            json.dumps({k: v["mean_hit_at_1"] if isinstance(v, dict) else v for k, v in row.items()}),
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps(out) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
