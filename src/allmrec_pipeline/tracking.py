"""Live MLflow metrics: a training loop's figures logged as each epoch (or step) ends, so that a run in progress,
or one that was killed, shows how far it got. Called by nodes; the loops themselves (``models/``, ``llm/``) only
take a callback."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import mlflow


def epoch_logger(prefix: str) -> Callable[[int, Mapping[str, float]], None]:
    """``log(step, figures)``: logs ``<prefix>.<name>`` at ``step`` to the active MLflow run (nothing without one);
    NaN figures (an epoch that was not validated) are left out."""

    def log(step: int, figures: Mapping[str, float]) -> None:
        if mlflow.active_run() is None:
            return
        values = {
            f"{prefix}.{name}": float(value)
            for name, value in figures.items()
            if isinstance(value, int | float) and not math.isnan(float(value))
        }
        if values:
            mlflow.log_metrics(values, step=step)

    return log


def log_history(prefix: str, history: Mapping[str, list[float]], first_step: int, last_step: int) -> None:
    """Log steps ``first_step..last_step`` (1-based) of per-step curves, e.g. the epochs a resumed run restored
    from its checkpoint, which the run that trained them logged to another MLflow run."""
    log = epoch_logger(prefix)
    for step in range(first_step, last_step + 1):
        log(step, {name: values[step - 1] for name, values in history.items() if len(values) >= step})
