"""Serving latency of the registered recommender: p50 / p95 / p99 seconds per request and requests/s.

    .venv/bin/python bench/serve.py [--model models:/allmrec-beauty@champion] [--requests 20]

Loads the model as `make serve` does (``mlflow.pyfunc.load_model``, this project's MLflow store) and calls
``predict`` in-process (the HTTP layer adds well under a millisecond per request locally) for frozen Beauty
``overall`` test users: (a) ranking the row's 20 given candidates, and (b) retrieving the CF model's
``register_model.retrieve`` best items of the catalogue and re-ranking them, each with one user and with 16
users per request. Prints one JSON line. Run ``make run`` first.
"""

from __future__ import annotations

import argparse
import json
import time

import mlflow
import numpy as np
import pandas as pd
import torch
from _common import ROOT, run_catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models:/allmrec-beauty@champion")
    parser.add_argument(
        "--requests", type=int, default=20, help="timed requests per case (after one warm-up)"
    )
    parser.add_argument("--params", default="", help="runtime params as kedro run takes them (key=value,...)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    catalog, _ = run_catalog(args.params)  # the frozen rows whose users the requests replay
    ids = catalog.load("item_index").set_index("item_idx")
    rows = catalog.load("eval_candidates")
    mlflow.set_tracking_uri(f"sqlite:///{ROOT / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(args.model)
    rows = rows[(rows["scenario"] == "overall") & (rows["split"] == "test")].reset_index(drop=True)
    users = [
        {
            "history": ids.loc[list(history), "item_id"].tolist(),
            "candidates": ids.loc[list(candidates), "item_id"].tolist(),
        }
        for history, candidates in zip(rows["history"], rows["candidates"], strict=True)
    ]
    figures = {}
    for case, with_candidates in (("rank_20_given", True), ("retrieve_then_rerank", False)):
        for per_request in (1, 16):
            times, next_user = [], 0
            for i in range(args.requests + 1):
                batch = []
                for _ in range(per_request):
                    user = users[next_user % len(users)]
                    next_user += 1
                    batch.append(
                        {
                            "history": user["history"],
                            "k": 10,
                            "candidates": user["candidates"] if with_candidates else None,
                        }
                    )
                start = time.perf_counter()
                answers = model.predict(pd.DataFrame(batch))
                if i:  # the first request warms up
                    times.append(time.perf_counter() - start)
                assert len(answers) == per_request
            times = np.asarray(times)
            figures[f"{case}_users_per_request_{per_request}"] = {
                "p50_s": float(np.percentile(times, 50)),
                "p95_s": float(np.percentile(times, 95)),
                "p99_s": float(np.percentile(times, 99)),
                "requests_per_s": float(len(times) / times.sum()),
                "requests": len(times),
            }
    print(json.dumps({"model": args.model, "threads": torch.get_num_threads(), **figures}))


if __name__ == "__main__":
    main()
