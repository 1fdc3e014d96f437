"""Our SASRec against RecBole 1.2.1's SASRec: same data, same leave-one-out split, same frozen rows.

    .venv/bin/python bench/cf_vs_recbole.py [--dataset ml-100k|beauty]

ml-100k is the copy inside the recbole wheel; ``beauty`` is the shipped Beauty after ``split_sequences`` (its
``sequences`` table, written as a RecBole atomic file with the position as timestamp). Per-user order is a
stable sort by timestamp, exactly as RecBole orders a sequential dataset. Train = all but the last two items,
valid = the second-to-last, test = the last. Both models: max length 50, hidden 50, 2 blocks, 1 head,
dropout 0.2, Adam lr 1e-3, batch 128, 2 threads. RecBole uses its default CE loss over every prefix and
full-ranking validation; ours trains one sequence per user (``--windows``: every position of long sequences)
with sampled BCE or CE (``--losses``) and early-stops on 1+100 sampled validation NDCG@10. Test metrics for
both are computed here, from each model's scores, by the same code: full ranking (history masked, as RecBole
does), NDCG@10 over 1+100 sampled candidates, Hit@1 over 1+19.

Ours is tested twice: with the weights our loop keeps (best sampled validation, as ``pretrain_cf`` does), and
under ``selected_by_full_valid`` with the weights of the best full-ranking validation epoch (RecBole's
selection). ``--lr`` / ``--batch-size`` / ``--train-seed`` change ours only; ``--recbole-seed`` changes RecBole's
training seed only (the rows stay those of ``--seed``; ``--recbole-only`` skips ours), and each RecBole seed
keeps its scores in ``bench/_work/cf_vs_recbole/<dataset>/recbole_seed<N>/``. Where they exist, pass
``--recbole-result`` (the earlier output JSON) to reuse them, or ``--retrain-recbole`` to train again.

"Time to best" is training + validation wall time up to the best epoch by full-ranking validation NDCG@10,
computed for both models by this script's code after every epoch, outside the timers (RecBole's own
validation figure is recorded too, as ``valid_full_ndcg_at_10_recbole``). "Time to RecBole's quality" is our
time until our validation NDCG@10 first reaches RecBole's best. ``full_ndcg_at_10_minus_recbole`` is the mean
per-user difference in test full-ranking NDCG@10, ours minus RecBole's, with a 95% paired bootstrap interval
(RecBole's per-user figures come from the scores its run saved). RecBole runs in its own virtualenv (``bench/_recbole_env``, built on first use: it needs
numpy<2, pandas<2.3, setuptools<81). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import glob
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from allmrec_pipeline import metrics
from allmrec_pipeline.models import build_backbone
from allmrec_pipeline.models.data import CandidateRows, NextItemExamples
from allmrec_pipeline.models.training import TrainingConfig, full_ranking_metrics, score_candidates, train
from allmrec_pipeline.schema import base_parameters

ROOT = Path(__file__).resolve().parents[1]
RECBOLE_ENV = ROOT / "bench" / "_recbole_env"
RECBOLE_PYTHON = RECBOLE_ENV / "bin" / "python"
WORK = ROOT / "bench" / "_work" / "cf_vs_recbole"


def ensure_recbole_env() -> None:
    if (
        RECBOLE_PYTHON.exists()
        and subprocess.run(
            [RECBOLE_PYTHON, "-c", "import recbole"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return
    print("building bench/_recbole_env (one-off, a few minutes)...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(RECBOLE_ENV)], check=True)
    pip = [str(RECBOLE_PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run(
        [*pip, "torch==2.13.0", "numpy<2", "pandas<2.3", "setuptools<81", "recbole==1.2.1"], check=True
    )


def load_interactions(dataset: str, work: Path) -> pd.DataFrame:
    """``(user, item, timestamp)`` as strings/ints, also written as ``work/<dataset>/<dataset>.inter``."""
    target = work / dataset / f"{dataset}.inter"
    target.parent.mkdir(parents=True, exist_ok=True)
    if dataset == "ml-100k":
        source = glob.glob(
            str(
                RECBOLE_ENV
                / "lib"
                / "python*"
                / "site-packages"
                / "recbole"
                / "dataset_example"
                / "ml-100k"
                / "ml-100k.inter"
            )
        )
        frame = pd.read_csv(source[0], sep="\t")
        frame.columns = [c.split(":")[0] for c in frame.columns]
        frame = frame[["user_id", "item_id", "timestamp"]]
    elif dataset == "beauty":
        paths = sorted(glob.glob(str(ROOT / "data/03_primary/beauty/sequences.parquet/*/sequences.parquet")))
        if not paths:
            raise SystemExit(
                "no Beauty sequences: run `kedro run --pipelines split_sequences` (or `make run`) first"
            )
        seqs = pd.read_parquet(paths[-1])
        frame = seqs[["user_idx", "items"]].explode("items")
        frame = pd.DataFrame(
            {
                "user_id": frame["user_idx"].astype(int),
                "item_id": frame["items"].astype(int),
                "timestamp": frame.groupby("user_idx").cumcount(),
            }
        )
    else:
        raise SystemExit(f"unknown dataset {dataset!r}")
    with open(target, "w") as file:
        file.write("user_id:token\titem_id:token\ttimestamp:float\n")
        frame.to_csv(file, sep="\t", header=False, index=False)
    return frame.astype({"user_id": str, "item_id": str})


def build_rows(frame: pd.DataFrame, seed: int):
    """Sequences in our item index, the split, and the shared sampled candidates (1+100; 1+19 = its first 20)."""
    ordered = frame.sort_values("timestamp", kind="stable").sort_values("user_id", kind="stable")
    tokens = np.sort(frame["item_id"].unique())
    index = {token: i + 1 for i, token in enumerate(tokens)}
    sequences = [
        np.array([index[t] for t in items])
        for items in ordered.groupby("user_id", sort=True)["item_id"].agg(list)
    ]
    raw = [list(items) for items in ordered.groupby("user_id", sort=True)["item_id"].agg(list)]
    rng = np.random.default_rng(seed)
    n_items = len(tokens)
    rows = {"valid": ([], [], []), "test": ([], [], [])}
    for seq in sequences:
        seen = set(seq.tolist())
        negatives = []
        while len(negatives) < 100:
            for item in rng.integers(1, n_items + 1, 200):
                if item not in seen and item not in negatives:
                    negatives.append(int(item))
                    if len(negatives) == 100:
                        break
        for split, cut in (("valid", -2), ("test", -1)):
            histories, targets, cands = rows[split]
            histories.append(seq[:cut])
            targets.append(int(seq[cut]))
            cands.append([int(seq[cut]), *negatives])
    train_sequences = [seq[:-2] for seq in sequences]
    return tokens, train_sequences, rows, raw


def sampled(rows, n_candidates: int) -> CandidateRows:
    histories, targets, cands = rows
    return CandidateRows.build(histories, [c[:n_candidates] for c in cands], targets, 50)


def test_figures(
    scores_100: np.ndarray, scores_20: np.ndarray, full: dict[str, np.ndarray]
) -> dict[str, float]:
    """Metrics from candidate scores (target in column 0) and full-ranking per-row values."""
    m100 = metrics.per_row_metrics(*metrics.target_rank_counts(scores_100, scores_100[:, 0]))
    m20 = metrics.per_row_metrics(*metrics.target_rank_counts(scores_20, scores_20[:, 0]))
    return {
        "full_hr_at_10": float(full["hr_at_10"].mean()),
        "full_ndcg_at_10": float(full["ndcg_at_10"].mean()),
        "sampled100_ndcg_at_10": float(m100["ndcg_at_10"].mean()),
        "sampled100_hr_at_10": float(m100["hr_at_10"].mean()),
        "sampled20_hit_at_1": float(m20["hit_at_1"].mean()),
    }


def run_ours(n_items: int, train_sequences, rows, args, loss: str) -> dict:
    torch.set_num_threads(2)
    torch.manual_seed(args.train_seed)
    model = build_backbone(
        "sasrec",
        n_items,
        {"hidden_size": 50, "num_blocks": 2, "num_heads": 1, "dropout": 0.2, "max_seq_len": 50},
    )
    valid100 = sampled(rows["valid"], 101)
    valid_histories = valid100.histories
    valid_targets = torch.as_tensor(rows["valid"][1])
    curve, cumulative = [], [0.0]

    best_full: dict = {"ndcg": float("-inf"), "state": None}

    def on_epoch(epoch: int, figures: dict, validated) -> None:  # outside our timer
        cumulative.append(cumulative[-1] + figures["epoch_seconds"])
        full = full_ranking_metrics(validated, valid_histories, valid_targets)
        curve.append(
            {
                "epoch": epoch,
                "seconds": cumulative[-1],
                "valid_full_ndcg_at_10": float(full["ndcg_at_10"].mean()),
                "valid_sampled100_ndcg_at_10": figures["valid_ndcg_at_10"],
                "lr": figures["lr"],  # the learning rate at this epoch's start
            }
        )
        if curve[-1]["valid_full_ndcg_at_10"] > best_full["ndcg"]:  # RecBole's model selection
            best_full.update(
                ndcg=curve[-1]["valid_full_ndcg_at_10"], state=copy.deepcopy(validated.state_dict())
            )

    config = TrainingConfig(
        **{
            **base_parameters()["pretrain_cf"]["training"],
            "epochs": args.epochs,
            "patience": args.patience,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "lr_decay": args.lr_decay,
            "lr_decay_patience": args.lr_decay_patience,
            "ema_decay": args.ema_decay,
            "lr_schedule": args.lr_schedule,
            "loss": loss,
            "windows": args.windows,
        }
    )
    result = train(
        model,
        NextItemExamples.build(train_sequences, 50, args.windows, args.window_stride),
        valid100,
        config,
        args.train_seed,
        progress=False,
        on_epoch=on_epoch,
    )
    test100, test20 = sampled(rows["test"], 101), sampled(rows["test"], 20)

    def test_now() -> tuple[dict[str, float], np.ndarray]:
        full = full_ranking_metrics(model, test100.histories, torch.as_tensor(rows["test"][1]))
        figures = test_figures(score_candidates(model, test100), score_candidates(model, test20), full)
        return figures, full["ndcg_at_10"]

    # the weights our loop kept: best sampled validation NDCG@10, as in pretrain_cf
    figures, per_user_full_ndcg = test_now()
    model.load_state_dict(best_full["state"])
    selected_like_recbole, _ = test_now()
    return {
        "per_user_full_ndcg_at_10": per_user_full_ndcg,  # for the paired comparison; not printed
        "curve": curve,
        "best_epoch_by_sampled_valid": result.best_epoch,
        "seconds_to_best_by_sampled_valid": result.seconds_to_best,
        "best_epoch": max(curve, key=lambda c: c["valid_full_ndcg_at_10"])["epoch"],
        "seconds_to_best": max(curve, key=lambda c: c["valid_full_ndcg_at_10"])["seconds"],
        "epochs_run": len(curve),
        **figures,
        "selected_by_full_valid": selected_like_recbole,  # the weights of the best full-ranking validation
    }


RECBOLE_SCORES, RECBOLE_TOKENS = "recbole_test_scores.npy", "recbole_item_tokens.json"


def recbole_test_metrics(work: Path, tokens: np.ndarray, rows) -> tuple[dict[str, float], np.ndarray]:
    """RecBole's test figures, computed here from the scores its run saved, and its per-user full-ranking
    NDCG@10 (for the paired comparison)."""
    scores = np.load(work / RECBOLE_SCORES)  # (users, n) in RecBole's item order
    column = {token: j for j, token in enumerate(json.loads((work / RECBOLE_TOKENS).read_text()))}
    ours_to_recbole = np.array([column[t] for t in tokens])
    scores = np.concatenate(
        [np.full((len(scores), 1), -np.inf, dtype=scores.dtype), scores[:, ours_to_recbole]], axis=1
    )  # our index
    histories, targets, cands = rows["test"]
    target_scores = scores[np.arange(len(targets)), targets]
    masked = scores.copy()
    for i, history in enumerate(histories):
        masked[i, history] = -np.inf
    masked[np.arange(len(targets)), targets] = target_scores
    masked[:, 0] = -np.inf
    full = metrics.per_row_metrics(
        *metrics.target_rank_counts(masked, target_scores), ("hr_at_10", "ndcg_at_10")
    )
    c = np.asarray(cands)
    figures = test_figures(np.take_along_axis(scores, c, 1), np.take_along_axis(scores, c[:, :20], 1), full)
    return figures, full["ndcg_at_10"]


def paired_difference(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    """Mean per-user difference with a 95% paired bootstrap interval: one seed's test NDCG@10 moves by about
    0.01, as much as the gaps being compared, so a bare ``>=`` between two means says little."""
    low, high = metrics.bootstrap_ci(ours - theirs)
    return {"mean": float((ours - theirs).mean()), "ci_low": low, "ci_high": high}


def recbole_dir(dataset: str, seed: int) -> Path:
    """Where one RecBole training seed's run keeps its checkpoint and test scores."""
    return WORK / dataset / f"recbole_seed{seed}"


def run_recbole(dataset: str, tokens: np.ndarray, raw_sequences, rows, args) -> dict:
    work, run_dir = WORK / dataset, recbole_dir(dataset, args.recbole_seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(work / "rows.json", "w") as file:
        json.dump(
            {
                "valid_histories": [r[:-2] for r in raw_sequences],
                "valid_targets": [r[-2] for r in raw_sequences],
                "test_histories": [r[:-1] for r in raw_sequences],
            },
            file,
        )
    out = subprocess.run(
        [
            str(RECBOLE_PYTHON),
            str(ROOT / "bench" / "recbole_sasrec.py"),
            "--data-path",
            str(WORK),
            "--dataset",
            dataset,
            "--rows",
            str(work / "rows.json"),
            "--epochs",
            str(args.recbole_epochs),
            "--stopping-step",
            str(args.recbole_stopping_step),
            "--seed",
            str(args.recbole_seed),
            "--work-dir",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=work,  # RecBole writes its logs to the working directory
    )
    if out.returncode != 0:
        raise SystemExit(f"RecBole run failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    (run_dir / RECBOLE_TOKENS).write_text(json.dumps(result["item_tokens"]))
    kept = ("curve", "best_epoch", "best_epoch_by_recbole_metric", "seconds_to_best")
    kept += ("best_valid_full_ndcg_at_10", "peak_rss_mb")
    return {"seed": args.recbole_seed} | {k: result[k] for k in kept}  # test figures: main, from its scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "beauty"])
    parser.add_argument("--epochs", type=int, default=200, help="our maximum epochs")
    parser.add_argument("--patience", type=int, default=20, help="our early-stopping patience (epochs)")
    parser.add_argument(
        "--losses", default="bce,ce", help="our training losses to run, comma-separated (bce, ce)"
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="our Adam learning rate (RecBole: 1e-3)")
    parser.add_argument("--batch-size", type=int, default=128, help="our batch size (RecBole: 128)")
    parser.add_argument(
        "--lr-decay",
        type=float,
        help="ours: multiply the lr by this after a validation plateau (default: off)",
    )
    parser.add_argument("--lr-decay-patience", type=int, default=1, help="ours: evaluations before a decay")
    parser.add_argument(
        "--ema-decay", type=float, help="ours: validate and keep an EMA of the weights (default: off)"
    )
    parser.add_argument(
        "--lr-schedule",
        default="constant",
        choices=["constant", "cosine"],
        help="ours: cosine anneals the lr to 0 over --epochs",
    )
    parser.add_argument("--recbole-epochs", type=int, default=10)
    parser.add_argument("--recbole-stopping-step", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42, help="seeds the sampled candidate rows (and RecBole)")
    parser.add_argument(
        "--train-seed", type=int, help="seeds our model init and batch order (default: --seed)"
    )
    parser.add_argument(
        "--recbole-seed",
        type=int,
        help="seeds RecBole's training only (default: --seed; the rows stay --seed's)",
    )
    parser.add_argument("--skip-recbole", action="store_true")
    parser.add_argument("--recbole-only", action="store_true", help="train and test RecBole only")
    parser.add_argument(
        "--windows", action="store_true", help="ours: train every position of long sequences (windows)"
    )
    parser.add_argument(
        "--window-stride", type=int, help="ours: items between window ends (default: 50, no overlap)"
    )
    parser.add_argument(
        "--retrain-recbole",
        action="store_true",
        help="train RecBole even when this seed's scores are already saved (they are overwritten)",
    )
    parser.add_argument(
        "--recbole-result",
        help="reuse the 'recbole' part of an earlier output of this script (same data and seed)",
    )
    args = parser.parse_args()
    if args.train_seed is None:
        args.train_seed = args.seed
    if args.recbole_seed is None:
        args.recbole_seed = args.seed
    saved_scores = recbole_dir(args.dataset, args.recbole_seed) / RECBOLE_SCORES
    retraining = not args.skip_recbole and not args.recbole_result
    if retraining and saved_scores.exists() and not args.retrain_recbole:
        # checked before ours trains: a RecBole run costs 20-50 minutes on 2 cores, never repeat one by accident
        raise SystemExit(
            f"{saved_scores} exists: pass --recbole-result with that run's output JSON to reuse it, "
            "or --retrain-recbole to train RecBole again (its scores are overwritten)"
        )
    ensure_recbole_env()
    frame = load_interactions(args.dataset, WORK)
    tokens, train_sequences, rows, raw_sequences = build_rows(frame, args.seed)
    out = {
        "dataset": args.dataset,
        "users": len(train_sequences),
        "items": len(tokens),
        "windows": args.windows,
        "ours_window_stride": args.window_stride,
        "ours_lr": args.lr,
        "ours_lr_decay": args.lr_decay,
        "ours_lr_decay_patience": args.lr_decay_patience,
        "ours_ema_decay": args.ema_decay,
        "ours_lr_schedule": args.lr_schedule,
        "ours_epochs": args.epochs,
        "ours_train_seed": args.train_seed,
        "ours_batch_size": args.batch_size,
    }
    losses = [] if args.recbole_only else args.losses.split(",")
    for loss in losses:
        started = time.perf_counter()
        out[f"ours_{loss}"] = run_ours(len(tokens), train_sequences, rows, args, loss)
        out[f"ours_{loss}"]["wall_seconds"] = time.perf_counter() - started
    if losses:
        out["ours_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if not args.skip_recbole:
        if args.recbole_result:
            recbole = out["recbole"] = json.loads(Path(args.recbole_result).read_text())["recbole"]
            out["recbole_reused_from"] = args.recbole_result
        else:
            recbole = out["recbole"] = run_recbole(args.dataset, tokens, raw_sequences, rows, args)
        run_dir = recbole_dir(args.dataset, recbole.get("seed", args.seed))  # older results: seed 42
        saved, recbole_per_user = recbole_test_metrics(run_dir, tokens, rows)
        for key, value in saved.items():  # a fresh run takes these; a reused result is checked against them
            recbole.setdefault(key, value)
        if not np.isclose(saved["full_ndcg_at_10"], recbole["full_ndcg_at_10"], rtol=0, atol=1e-9):
            raise SystemExit(
                f"{run_dir / RECBOLE_SCORES} gives full NDCG@10 {saved['full_ndcg_at_10']:.6f}, "
                f"the reused result says {recbole['full_ndcg_at_10']:.6f}: it is from another run; "
                "run without --recbole-result"
            )
        quality = recbole["best_valid_full_ndcg_at_10"]
        for loss in losses:
            ours = out[f"ours_{loss}"]
            ours["full_ndcg_at_10_minus_recbole"] = paired_difference(
                ours["per_user_full_ndcg_at_10"], recbole_per_user
            )
            reached = [c["seconds"] for c in ours["curve"] if c["valid_full_ndcg_at_10"] >= quality]
            ours["seconds_to_recbole_best_quality"] = reached[0] if reached else None
            ours["ratio_time_to_recbole_quality"] = (
                reached[0] / recbole["seconds_to_best"] if reached else None
            )
            ours["ratio_time_to_best"] = ours["seconds_to_best"] / recbole["seconds_to_best"]
    for side in out.values():
        if isinstance(side, dict):
            side.pop("per_user_full_ndcg_at_10", None)
        if isinstance(side, dict) and "curve" in side:
            side["curve"] = [{k: round(v, 4) for k, v in c.items()} for c in side["curve"]]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
