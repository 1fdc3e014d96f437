"""Nodes of ``register_model``: log the trained recommender as an MLflow pyfunc model (a serving bundle, never a
copy of the LLM), register it as ``allmrec-<dataset>`` and set the alias ``champion`` only when the configured
paired difference's interval lies above the configured bound."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, Schema
from mlflow.types.schema import Array

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.llm.inputs import item_table, title_vector_table
from allmrec_pipeline.models.checkpoint import Checkpoint, load_backbone
from allmrec_pipeline.models.data import popularity_counts
from allmrec_pipeline.serving import write_bundle

logger = logging.getLogger(__name__)

SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(Array(DataType.string), "history"),
            ColSpec(DataType.long, "k", required=False),
            ColSpec(Array(DataType.string), "candidates", required=False),
        ]
    )
)


def serving_items(
    cf_model: Checkpoint,
    stage2_model: Checkpoint,
    joint_item_embeddings: pd.DataFrame,
    item_index: pd.DataFrame,
    items: pd.DataFrame,
    item_popularity: pd.DataFrame,
    item_title_vectors: pd.DataFrame,
) -> pd.DataFrame:
    """``item_idx, item_id, title, count, vector, title_vector``: the catalogue as the stage-2 model reads it
    (its item source: stage 1's joint embeddings, or the raw CF ones; the title vectors of the count gate's
    z(text_cosine), empty when none were encoded)."""
    backbone = load_backbone(cf_model, expected_n_items=len(item_index))
    source = stage2_model.metadata.get("item_source", "joint")  # a str is stored as it is
    table = item_table(source, joint_item_embeddings, backbone).numpy()
    frame = item_index.merge(items[["item_id", "title"]], on="item_id", how="left").sort_values("item_idx")
    frame["title"] = frame["title"].fillna("").astype(str)
    frame["count"] = popularity_counts(item_popularity, len(item_index))[frame["item_idx"].to_numpy()]
    frame["vector"] = list(table[frame["item_idx"].to_numpy()].astype(np.float32))
    titles = title_vector_table(item_title_vectors, len(item_index))
    frame["title_vector"] = (
        list(titles.numpy()[frame["item_idx"].to_numpy()]) if titles is not None else [None] * len(frame)
    )
    return frame[["item_idx", "item_id", "title", "count", "vector", "title_vector"]].reset_index(drop=True)


def gate_decision(paired_differences: pd.DataFrame, gate: dict[str, Any]) -> dict[str, Any]:
    """Whether the run earns the alias: the configured model's paired difference to the configured reference,
    on the configured scenario and metric, has an interval lower bound above ``min_ci_low``."""
    keys = {k: gate[k] for k in ("model", "reference", "scenario", "metric")}
    rows = paired_differences
    for key, value in keys.items():
        rows = rows[rows[key] == value]
    if rows.empty:
        return {**keys, "passed": False, "reason": f"no paired difference {keys} in this run's evaluation"}
    row = rows.iloc[0]
    passed = bool(row["ci_low"] > gate["min_ci_low"])
    figures = (
        f"{row['difference']:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] on {int(row['n'])} rows"
    )
    verdict = "above" if passed else "not above"
    return {
        **keys,
        "difference": float(row["difference"]),
        "ci_low": float(row["ci_low"]),
        "ci_high": float(row["ci_high"]),
        "n": int(row["n"]),
        "min_ci_low": float(gate["min_ci_low"]),
        "passed": passed,
        "reason": f"{keys['model']} - {keys['reference']} ({keys['scenario']}, {keys['metric']}): {figures}; "
        f"the lower bound is {verdict} {gate['min_ci_low']}",
    }


def log_and_register(
    cf_model: Checkpoint,
    stage2_model: Checkpoint,
    joint_item_embeddings: pd.DataFrame,
    item_index: pd.DataFrame,
    items: pd.DataFrame,
    item_popularity: pd.DataFrame,
    item_title_vectors: pd.DataFrame,
    paired_differences: pd.DataFrame,
    register_model: dict[str, Any],
    dataset: str,
) -> dict[str, Any]:
    """Log the recommender to the active MLflow run (artifact ``recommender``), register it as
    ``allmrec-<dataset>`` and set the alias ``champion`` when the gate passes; returns the report."""
    if mlflow.active_run() is None:
        raise ConfigError(
            "register_model logs to the active MLflow run: run it through `kedro run` (kedro-mlflow)"
        )
    name = f"allmrec-{dataset}"
    table = serving_items(
        cf_model, stage2_model, joint_item_embeddings, item_index, items, item_popularity, item_title_vectors
    )
    settings = {key: register_model[key] for key in ("retrieve", "k", "batch_size")}
    example = pd.DataFrame({"history": [table["item_id"].head(3).tolist()], "k": [5]})
    with tempfile.TemporaryDirectory() as folder:
        bundle = write_bundle(
            Path(folder) / "bundle", cf_model, stage2_model, table, {**settings, "dataset": dataset}
        )
        info = mlflow.pyfunc.log_model(
            name="recommender",
            python_model=str(Path(__file__).resolve().parents[2] / "pyfunc_model.py"),
            artifacts={"bundle": str(bundle)},
            signature=SIGNATURE,
            input_example=example,
            registered_model_name=name,
            pip_requirements=["allmrec-pipeline"],  # served with --env-manager local, in this project's venv
        )
    version = str(info.registered_model_version)
    decision = gate_decision(paired_differences, register_model["gate"])
    client = mlflow.MlflowClient()
    if decision["passed"]:
        client.set_registered_model_alias(name, "champion", version)
        logger.info("Registered %s version %s as @champion: %s", name, version, decision["reason"])
    else:
        logger.warning(
            "Registered %s version %s WITHOUT the alias champion: %s", name, version, decision["reason"]
        )
    client.set_model_version_tag(name, version, "gate", decision["reason"])
    return {
        "model_uri": info.model_uri,
        "registered_model": name,
        "version": version,
        "champion": decision["passed"],
        "gate": decision,
        "serving": settings,
    }
