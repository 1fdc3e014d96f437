"""RecBole 1.2.1's SASRec on a prepared dataset, scored on the benchmark's frozen rows.

Runs inside ``bench/_recbole_env`` (RecBole needs numpy<2, pandas<2.3); ``bench/cf_vs_recbole.py`` calls it.
Trains with RecBole's own trainer and full-ranking validation, records the wall time at every epoch's end,
then scores the shared rows (full ranking, 1+100, 1+19) with the trained model. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from allmrec_pipeline import metrics  # noqa: E402  (numpy only: importable in RecBole's environment)


def encode(dataset, histories: list[list[str]]) -> tuple[list[np.ndarray], torch.Tensor, torch.Tensor]:
    """RecBole ids of each history, and its right-padded last-50 input with lengths."""
    ids = [np.asarray(dataset.token2id("item_id", [str(t) for t in history])) for history in histories]
    seqs = torch.zeros(len(ids), 50, dtype=torch.long)  # RecBole pads on the right
    lengths = torch.zeros(len(ids), dtype=torch.long)
    for i, history in enumerate(ids):
        tail = history[-50:]
        seqs[i, : len(tail)] = torch.as_tensor(tail)
        lengths[i] = len(tail)
    return ids, seqs, lengths


@torch.no_grad()
def score(model, seqs: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
    """Scores ``(R, 1+n)`` of every RecBole item id (column 0 is padding)."""
    return torch.cat(
        [
            model.forward(seqs[i : i + 256], lengths[i : i + 256]) @ model.item_embedding.weight.T
            for i in range(0, len(seqs), 256)
        ]
    ).numpy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-path", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--rows", required=True, help="JSON rows shared with our model")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--stopping-step", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = Config(
        model="SASRec",
        dataset=args.dataset,
        config_dict={
            "data_path": args.data_path,
            "checkpoint_dir": args.work_dir,
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "MAX_ITEM_LIST_LENGTH": 50,
            "hidden_size": 50,
            "inner_size": 50,
            "n_layers": 2,
            "n_heads": 1,
            "hidden_dropout_prob": 0.2,
            "attn_dropout_prob": 0.2,
            "loss_type": "CE",
            "train_neg_sample_args": None,
            "learning_rate": 1e-3,
            "train_batch_size": 128,
            "eval_batch_size": 256,
            "epochs": args.epochs,
            "stopping_step": args.stopping_step,
            "eval_args": {
                "split": {"LS": "valid_and_test"},
                "order": "TO",
                "mode": "full",
                "group_by": "user",
            },
            "metrics": ["NDCG", "Hit"],
            "topk": [10],
            "valid_metric": "NDCG@10",
            "seed": args.seed,
            "reproducibility": True,
            "device": "cpu",
            "use_gpu": False,
            "show_progress": False,
            "log_wandb": False,
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, _ = data_preparation(config, dataset)
    model = SASRec(config, train_data.dataset)
    trainer = Trainer(config, model)
    with open(args.rows) as file:
        rows = json.load(file)  # raw item tokens, oldest first
    valid_histories, valid_seqs, valid_lengths = encode(dataset, rows["valid_histories"])
    valid_targets = np.asarray(dataset.token2id("item_id", [str(t) for t in rows["valid_targets"]]))
    curve: list[dict[str, float]] = []
    start, excluded = time.perf_counter(), 0.0

    def on_epoch(epoch: int, valid_score: float) -> None:
        # Also score the validation rows with the benchmark's own metric code, outside the timer.
        nonlocal excluded
        paused = time.perf_counter()
        elapsed = paused - start - excluded  # RecBole's own training and validation so far
        model.eval()
        scores = score(model, valid_seqs, valid_lengths)
        target_scores = scores[np.arange(len(valid_targets)), valid_targets].copy()
        for i, history in enumerate(valid_histories):
            scores[i, history] = -np.inf
        scores[:, 0] = -np.inf
        scores[np.arange(len(valid_targets)), valid_targets] = target_scores
        ndcg = metrics.per_row_metrics(*metrics.target_rank_counts(scores, target_scores), ("ndcg_at_10",))
        model.train()
        excluded += time.perf_counter() - paused
        curve.append(
            {
                "epoch": epoch + 1,
                "seconds": elapsed,
                "valid_full_ndcg_at_10_recbole": float(valid_score),
                "valid_full_ndcg_at_10": float(ndcg["ndcg_at_10"].mean()),
            }
        )

    trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=on_epoch)
    best = max(curve, key=lambda c: c["valid_full_ndcg_at_10"])
    checkpoint = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()

    _, seqs, lengths = encode(dataset, rows["test_histories"])
    scores = score(model, seqs, lengths)
    np.save(f"{args.work_dir}/recbole_test_scores.npy", scores[:, 1:])  # column j = item token j+1
    print(
        json.dumps(
            {
                "curve": curve,
                "best_epoch": best["epoch"],
                "best_epoch_by_recbole_metric": max(curve, key=lambda c: c["valid_full_ndcg_at_10_recbole"])[
                    "epoch"
                ],
                "seconds_to_best": best["seconds"],
                "best_valid_full_ndcg_at_10": best["valid_full_ndcg_at_10"],
                "item_tokens": [str(t) for t in dataset.field2id_token["item_id"][1:]],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
