"""RecBole 1.2.1's SASRec on a prepared dataset, scored on the benchmark's frozen rows.

Runs inside ``bench/_recbole_env`` (RecBole needs numpy<2, pandas<2.3); ``bench/cf_vs_recbole.py`` calls it.
Trains with RecBole's own trainer and full-ranking validation, records the wall time at every epoch's end,
then scores the shared rows (full ranking, 1+100, 1+19) with the trained model. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_seed


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
    curve: list[dict[str, float]] = []
    start = time.perf_counter()

    def on_epoch(epoch: int, valid_score: float) -> None:
        curve.append(
            {
                "epoch": epoch + 1,
                "seconds": time.perf_counter() - start,
                "valid_full_ndcg_at_10": float(valid_score),
            }
        )

    trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=on_epoch)
    best = max(curve, key=lambda c: c["valid_full_ndcg_at_10"])
    checkpoint = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()

    with open(args.rows) as file:
        histories = json.load(file)["test_histories"]  # raw item tokens, oldest first
    seqs = torch.zeros(len(histories), 50, dtype=torch.long)  # RecBole pads on the right
    lengths = torch.zeros(len(histories), dtype=torch.long)
    for i, history in enumerate(histories):
        ids = dataset.token2id("item_id", [str(t) for t in history[-50:]])
        seqs[i, : len(ids)] = torch.as_tensor(ids)
        lengths[i] = len(ids)
    with torch.no_grad():
        scores = torch.cat(
            [
                model.forward(seqs[i : i + 256], lengths[i : i + 256])
                @ model.item_embedding.weight.T  # (B, 1+n)
                for i in range(0, len(histories), 256)
            ]
        )
    np.save(f"{args.work_dir}/recbole_test_scores.npy", scores[:, 1:].numpy())  # column j = item token j+1
    print(
        json.dumps(
            {
                "curve": curve,
                "best_epoch": best["epoch"],
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
