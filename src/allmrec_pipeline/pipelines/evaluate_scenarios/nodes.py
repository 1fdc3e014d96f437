"""Nodes of ``evaluate_scenarios``: every model on the same frozen rows, metrics with intervals, a report."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from allmrec_pipeline import metrics
from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.llm.recommender import recommender_from_checkpoint
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.pipelines.split_sequences.splitting import rng_for
from allmrec_pipeline.pipelines.stage2.nodes import (
    build_recommender,
    embedding_table,
    item_titles,
    load_llm,
    row_samples,
    user_vectors,
    wording_for,
)

from . import report, scorers

logger = logging.getLogger(__name__)

MODELS = (
    "cf",
    "popularity",  # each candidate's training interactions: the item prior, no user
    "llm_only",
    "a_llmrec",
    "a_llmrec_sbert",
    "mlp_llm",
    "no_user",  # the stage-2 ablations (kedro run --pipeline ablations)
    "random_items",
    "titles_only",
)
WITHOUT_LLM = ("cf", "popularity")  # scored without the LLM: no stage-2 checkpoint, always rank mode
LLM_ONLY = {"use_user": False, "item_tokens": "none", "objective": "lm"}


def _rows(candidates: pd.DataFrame, scenario: str, max_rows: int | None, seed: int) -> pd.DataFrame:
    rows = candidates[(candidates["scenario"] == scenario) & (candidates["split"] == "test")].reset_index(
        drop=True
    )
    if max_rows is not None and len(rows) > max_rows:
        rows = rows.iloc[
            np.sort(rng_for(seed, f"evaluate/{scenario}").choice(len(rows), max_rows, replace=False))
        ]
    return rows.reset_index(drop=True)


def evaluate_models(models_key: str = "models", **inputs: Any) -> pd.DataFrame:
    """Score every configured model on every scenario's frozen test rows.

    Args:
        models_key: The key of ``evaluate_scenarios`` that lists the models (``models``, or
            ``ablation_models`` for the ablation run).
        **inputs: The catalog inputs (see ``pipeline.py``): models, embeddings, frozen candidates of both
            domains, and the ``evaluate_scenarios``, ``stage2`` and ``llms`` parameters.

    Returns:
        ``predictions(model, scenario, user_idx, target_item_idx, candidates, scores, target_rank,
        generation, valid)``; ``generation`` and ``valid`` are null in rank mode.
    """
    params = inputs["evaluate_scenarios"]
    model_names = list(params[models_key])
    unknown = sorted(set(model_names) - set(MODELS))
    if unknown:
        raise ConfigError(
            f"params 'evaluate_scenarios.{models_key}' has unknown model(s) {unknown}; known: {list(MODELS)}"
        )
    missing = sorted(
        {_checkpoint_input(m) for m in model_names if m not in (*WITHOUT_LLM, "llm_only")} - set(inputs)
    )
    if missing:
        raise ConfigError(
            f"params 'evaluate_scenarios.{models_key}' needs {missing}, which this pipeline does not load: "
            "the stage-2 ablations are evaluated by `kedro run --pipeline ablations`"
        )
    mode, seed = params["mode"], int(inputs["seed"])
    backbone = load_backbone(inputs["cf_model"], expected_n_items=len(inputs["item_index"]))
    stage2 = inputs["stage2"]
    domains = {
        "source": scorers.Domain(
            titles=item_titles(inputs["items"], inputs["item_index"]),
            wording=wording_for(stage2, inputs["dataset"]),
            joint_table=embedding_table(inputs["joint_item_embeddings"], "e"),
            text_table=embedding_table(inputs["text_item_embeddings"], "q"),
        )
    }
    scenarios = [s for s in params["scenarios"] if s != "cross_domain" or inputs["cross_domain_enabled"]]
    if "cross_domain" in scenarios:
        foreign = inputs["foreign_item_embeddings"]
        domains["cross_domain"] = scorers.Domain(
            titles=item_titles(inputs["cross_items"], inputs["cross_item_index"]),
            wording=wording_for(stage2, inputs["cross_domain_dataset"]),
            cf_table=embedding_table(foreign, "cf_stand_in"),
            joint_table=embedding_table(foreign, "q"),  # foreign items take the text path
            text_table=embedding_table(foreign, "q"),
        )
    llm_models = [m for m in model_names if m not in WITHOUT_LLM]
    counts = (
        scorers.popularity_counts(inputs["item_popularity"], len(inputs["item_index"]))
        if "popularity" in model_names
        else None
    )
    model = tokenizer = None
    if llm_models:
        _, model, tokenizer = load_llm(inputs["llms"], inputs["llm"])
    frames = []
    for scenario in scenarios:
        domain = domains["cross_domain" if scenario == "cross_domain" else "source"]
        source = inputs["cross_eval_candidates"] if scenario == "cross_domain" else inputs["eval_candidates"]
        rows = _rows(source, scenario, params.get("max_rows"), seed)
        if rows.empty:
            logger.warning("Scenario %s has no test rows: skipped", scenario)
            continue
        samples = row_samples(rows, user_vectors(backbone, list(rows["history"]), domain.cf_table))
        for name in model_names:
            if name == "cf":
                scored = scorers.score_cf(backbone, rows, domain)
            elif name == "popularity":  # the source domain's counts say nothing about foreign items
                scored = scorers.score_popularity(counts if scenario != "cross_domain" else None, rows)
            else:
                recommender = _recommender(
                    name,
                    inputs,
                    model,
                    tokenizer,
                    domain,
                    backbone.item_embeddings.detach(),
                    backbone.hidden_size,
                )
                scored = scorers.score_llm(
                    recommender,
                    samples,
                    mode,
                    int(params["batch_size"]),
                    int(params["generate"]["max_new_tokens"]),
                    float(params["generate"]["fuzzy_threshold"]),
                    desc=f"{name} / {scenario}",
                )
            frames.append(
                _predictions(
                    name, scenario, rows, samples, scored, mode if name not in WITHOUT_LLM else "rank"
                )
            )
            logger.info("%s on %s: Hit@1 %.3f (n=%d)", name, scenario, _hit_rate(frames[-1]), len(rows))
    return pd.concat(frames, ignore_index=True)


def _recommender(
    name: str, inputs: dict[str, Any], model, tokenizer, domain: scorers.Domain, backbone_items, cf_dim: int
):
    if name == "llm_only":
        return build_recommender(
            model,
            tokenizer,
            inputs["stage2"],
            domain.wording,
            domain.joint_table,
            domain.titles,
            cf_dim,
            LLM_ONLY,
        )
    if name == "a_llmrec_sbert":
        table = domain.text_table  # q_i instead of e_i at inference
    elif name == "mlp_llm":
        table = domain.cf_table if domain.cf_table is not None else backbone_items  # raw CF embeddings
    else:
        table = domain.joint_table
    return recommender_from_checkpoint(
        inputs[_checkpoint_input(name)], model, tokenizer, table, domain.titles, domain.wording
    )


def _checkpoint_input(model_name: str) -> str:
    """The catalog input holding a model's stage-2 checkpoint (A-LLMRec and its SBERT variant share one)."""
    return "stage2_model" if model_name in ("a_llmrec", "a_llmrec_sbert") else f"stage2_{model_name}_model"


def _predictions(name, scenario, rows, samples, scored: scorers.Scored, mode: str) -> pd.DataFrame:
    targets = np.asarray([s.target_pos for s in samples])
    target_scores = scored.scores[np.arange(len(samples)), targets]
    better, ties = metrics.target_rank_counts(scored.scores, target_scores)
    frame = pd.DataFrame(
        {
            "model": name,
            "scenario": scenario,
            "user_idx": rows["user_idx"].to_numpy(),
            "target_item_idx": rows["target_item_idx"].to_numpy(),
            "candidates": list(rows["candidates"]),
            "scores": list(scored.scores.astype(np.float32)),
            "target_rank": 1 + better + ties / 2.0,  # expected rank under random tie-breaking
            "generation": scored.generations if mode == "generate" else [None] * len(rows),
            "valid": [c is not None for c in scored.chosen] if mode == "generate" else [None] * len(rows),
            "hit": [c == t for c, t in zip(scored.chosen, targets, strict=True)]
            if mode == "generate"
            else [None] * len(rows),
        }
    )
    return frame


def _hit_rate(frame: pd.DataFrame) -> float:
    if frame["hit"].notna().all():
        return float(frame["hit"].mean())
    return float((frame["target_rank"] == 1).mean())


def summarize_scenarios(
    predictions: pd.DataFrame, evaluate_scenarios: dict[str, Any], seed: int
) -> tuple[pd.DataFrame, dict[str, float]]:
    """``scenario_metrics(model, scenario, metric, value, ci_low, ci_high, n)`` and the flat MLflow metrics
    ``{model}.{scenario}.{metric}`` (with ``_ci_low`` / ``_ci_high``)."""
    resamples, confidence = (
        int(evaluate_scenarios["bootstrap_resamples"]),
        float(evaluate_scenarios["confidence"]),
    )
    records, flat = [], {}
    for (model, scenario), group in predictions.groupby(["model", "scenario"], sort=False):
        scores = np.stack(group["scores"].to_numpy())
        targets = np.array(
            [list(c).index(t) for c, t in zip(group["candidates"], group["target_item_idx"], strict=True)]
        )
        if group["hit"].notna().all():  # generate mode: Hit@1 and ValidRatio
            per_row = {
                "hit_at_1": group["hit"].astype(float).to_numpy(),
                "valid_ratio": group["valid"].astype(float).to_numpy(),
            }
        else:
            per_row = metrics.per_row_metrics(
                *metrics.target_rank_counts(scores, scores[np.arange(len(group)), targets])
            )
        for metric, stats in metrics.summarize(per_row, resamples, confidence, seed).items():
            records.append({"model": model, "scenario": scenario, "metric": metric, **stats})
            key = f"{model}.{scenario}.{metric}"
            flat[key], flat[f"{key}_ci_low"], flat[f"{key}_ci_high"] = (
                stats["value"],
                stats["ci_low"],
                stats["ci_high"],
            )
    table = pd.DataFrame.from_records(
        records, columns=["model", "scenario", "metric", "value", "ci_low", "ci_high", "n"]
    )
    return table, flat


def write_report(
    scenario_metrics: pd.DataFrame, predictions: pd.DataFrame, dataset: str
) -> tuple[str, dict[str, plt.Figure]]:
    """The markdown table (Hit@1 with its interval; the random floor named) and one bar chart per scenario."""
    n_candidates = int(predictions["candidates"].map(len).max())
    title = f"Results on {dataset} (frozen candidate rows, {n_candidates} candidates each)"
    return report.markdown_table(scenario_metrics, "hit_at_1", n_candidates, title), report.bar_charts(
        scenario_metrics, "hit_at_1", n_candidates
    )
