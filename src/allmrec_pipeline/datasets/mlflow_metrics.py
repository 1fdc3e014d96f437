"""``MlflowMetricsDataset``: a plain ``{name: value}`` dict from a node, logged as MLflow metrics."""

from __future__ import annotations

import math
import time
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError
from mlflow.entities import Metric

MetricValues = dict[str, float | int | list[float]]


class MlflowMetricsDataset(AbstractDataset[MetricValues, MetricValues]):
    """Logs a node's metrics dict to the active MLflow run, in one batch.

    A scalar value is logged at step 0; a list is logged as a history, its ``i``-th element (from 1) at step ``i``
    (e.g. per-step losses: step 1 is the first step, as epoch 1 is the first epoch). Keys get ``prefix.`` in front, so that two pipelines (or two namespaces) never write
    the same key. NaN values are skipped: MLflow stores them, but they break the UI's charts.

    Example catalog entry::

        ingest_metrics:
          type: allmrec_pipeline.datasets.MlflowMetricsDataset
          prefix: ingest

    Loading returns the latest value (or history) of each key of the active run.
    """

    def __init__(self, *, prefix: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._prefix = prefix
        self.metadata = metadata

    def _key(self, name: str) -> str:
        return f"{self._prefix}.{name}" if self._prefix else name

    def save(self, data: MetricValues) -> None:
        run = mlflow.active_run()
        if run is None:
            raise DatasetError("No active MLflow run to log metrics to (is kedro-mlflow enabled?)")
        now = int(time.time() * 1000)
        batch = []
        for name, value in data.items():
            history = isinstance(value, list | tuple)
            for step, single in enumerate(value if history else [value], start=1 if history else 0):
                if single is None or (isinstance(single, float) and math.isnan(single)):
                    continue
                batch.append(Metric(self._key(name), float(single), now, step))
        client = mlflow.MlflowClient()
        for start in range(0, len(batch), 1000):  # MLflow caps a batch at 1,000 metrics
            client.log_batch(run.info.run_id, metrics=batch[start : start + 1000])

    def load(self) -> MetricValues:
        run = mlflow.active_run()
        if run is None:
            raise DatasetError("No active MLflow run to read metrics from")
        metrics = mlflow.MlflowClient().get_run(run.info.run_id).data.metrics
        prefix = f"{self._prefix}." if self._prefix else ""
        return {key.removeprefix(prefix): value for key, value in metrics.items() if key.startswith(prefix)}

    def _describe(self) -> dict[str, Any]:
        return {"prefix": self._prefix}
