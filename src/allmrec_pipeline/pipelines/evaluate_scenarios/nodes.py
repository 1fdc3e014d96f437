"""Nodes of ``evaluate_scenarios``: every model on the same frozen rows, metrics with intervals, paired
differences against ``cf`` and the best LLM-free floor, and a report."""

from __future__ import annotations

import logging
import time
import typing
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from allmrec_pipeline import metrics, text_floors
from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.llm.gate_bounds import SCENARIOS as GATE_SCENARIOS
from allmrec_pipeline.llm.gate_bounds import GateBounds, overlap_hits, pick_gate, validation_rows
from allmrec_pipeline.llm.inputs import (
    LLM_ONLY,
    build_recommender,
    embedding_table,
    encode_item_titles,
    item_titles,
    load_llm,
    row_samples,
    title_vector_table,
    user_vectors,
    wording_for,
)
from allmrec_pipeline.llm.recommender import fuse_inputs, recommender_from_checkpoint
from allmrec_pipeline.llm.text_gate import TextGate
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.models.data import popularity_counts
from allmrec_pipeline.schema import Scenario
from allmrec_pipeline.seeding import rng_for
from allmrec_pipeline.tracking import epoch_logger
from allmrec_pipeline.variants import FLOORS, MODELS, WITHOUT_LLM

from . import report, scorers

logger = logging.getLogger(__name__)

PAIRED_METRICS = ("hit_at_1", "ndcg_at_10")


def _rows(candidates: pd.DataFrame, scenario: str, max_rows: int | None, seed: int) -> pd.DataFrame:
    """The scenario's test rows (seeded cap), with ``row``: the row's position among all its test rows, the
    key that pairs two models' predictions of the same row."""
    rows = candidates[(candidates["scenario"] == scenario) & (candidates["split"] == "test")].reset_index(
        drop=True
    )
    rows = rows.assign(row=np.arange(len(rows)))
    if max_rows is not None and len(rows) > max_rows:
        rows = rows.iloc[
            np.sort(rng_for(seed, f"evaluate/{scenario}").choice(len(rows), max_rows, replace=False))
        ]
    return rows.reset_index(drop=True)


def _llm_rows(rows: pd.DataFrame, scenario: str, max_llm_rows: int | None, seed: int) -> pd.DataFrame:
    """The seeded subset of ``rows`` that every LLM-based model scores (the same rows for all of them)."""
    if max_llm_rows is None or len(rows) <= max_llm_rows:
        return rows
    keep = np.sort(
        rng_for(seed, f"evaluate/llm_rows/{scenario}").choice(len(rows), max_llm_rows, replace=False)
    )
    return rows.iloc[keep].reset_index(drop=True)


def _positive_or_null(params: dict[str, Any], key: str, section: str = "evaluate_scenarios") -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"params '{section}.{key}' must be a positive integer or null, got {value!r}")
    return value


def _scenario_caps(params: dict[str, Any]) -> dict[str, int]:
    """``evaluate_scenarios.max_llm_rows_by_scenario``, checked: a scenario name to a positive row cap (a null
    cap, or a scenario not named: none of its own)."""
    section = "evaluate_scenarios.max_llm_rows_by_scenario"
    caps = params.get("max_llm_rows_by_scenario") or {}
    if not isinstance(caps, dict):
        raise ConfigError(
            f"params '{section}' must map scenario names to positive integers or null, got {caps!r}"
        )
    known = typing.get_args(Scenario)
    for scenario in caps:
        if scenario not in known:
            raise ConfigError(
                f"params '{section}' names an unknown scenario {scenario!r} (known: {', '.join(known)})"
            )
    checked = {scenario: _positive_or_null(caps, scenario, section) for scenario in caps}
    return {scenario: cap for scenario, cap in checked.items() if cap is not None}


def _smaller(cap: int | None, other: int | None) -> int | None:
    """The tighter of two row caps (``None``: no cap)."""
    return min((c for c in (cap, other) if c is not None), default=None)


def _floor_settings(params: dict[str, Any]) -> dict[str, Any]:
    """``evaluate_scenarios.floors``, checked: every key present (the YAML is the one source of defaults)."""
    floors = params.get("floors")
    keys = {"n_history", "cf_text_weights"}
    if not isinstance(floors, dict) or set(floors) != keys:
        given = sorted(floors) if isinstance(floors, dict) else floors
        raise ConfigError(
            f"params 'evaluate_scenarios.floors' must have exactly the keys {sorted(keys)}, got {given}"
        )
    n_history = floors["n_history"]
    if isinstance(n_history, bool) or not isinstance(n_history, int) or n_history < 1:
        raise ConfigError(
            f"params 'evaluate_scenarios.floors.n_history' must be a positive integer, got {n_history!r}"
        )
    try:
        weights = [float(w) for w in floors["cf_text_weights"]]
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"params 'evaluate_scenarios.floors.cf_text_weights' must be a list of numbers: {exc}"
        ) from exc
    if not weights or min(weights) < 0:
        raise ConfigError(
            "params 'evaluate_scenarios.floors.cf_text_weights' must be a non-empty list of weights >= 0"
        )
    return {"n_history": n_history, "weights": weights}


def encode_cross_domain_item_titles(
    cross_items: pd.DataFrame,
    cross_item_index: pd.DataFrame,
    evaluate_scenarios: dict[str, Any],
    title_encoder: str,
    cross_domain_enabled: bool,
) -> pd.DataFrame:
    """The cross-domain items' title vectors (``llm.inputs.encode_item_titles``), for ``text_cosine`` and the
    count gate's z(text_cosine) there; the source items' are stage 2's input, encoded by its pipeline.

    Args:
        cross_items, cross_item_index: The cross-domain dataset's items and their indexes.
        evaluate_scenarios: ``evaluate_scenarios`` parameters (nothing is encoded when no model list names
            ``text_cosine`` or ``a_llmrec``).
        title_encoder: The frozen sentence encoder (``params:title_encoder``).
        cross_domain_enabled: Whether the cross-domain scenario runs (nothing is encoded when it does not).

    Returns:
        The ``(item_idx, vector)`` table of unit-length vectors (empty when not encoded).
    """
    _floor_settings(evaluate_scenarios)
    wanted = {"text_cosine", "a_llmrec"} & {
        *evaluate_scenarios["models"],
        *evaluate_scenarios.get("ablation_models", []),
    }
    if not (wanted and cross_domain_enabled):
        return pd.DataFrame({"item_idx": pd.Series(dtype="int64"), "vector": pd.Series(dtype="object")})
    return encode_item_titles(cross_items, cross_item_index, title_encoder, "cross-domain")


def choose_cf_text_weight(
    cf_model,
    eval_candidates: pd.DataFrame,
    items: pd.DataFrame,
    item_index: pd.DataFrame,
    evaluate_scenarios: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, float]]:
    """The ``cf_text`` mixing weight with the best Hit@1 on the ``overall`` *validation* rows (never test).

    Returns:
        ``{weight, valid_rows, valid_hit_at_1_by_weight}`` and its MLflow metrics (``weight``,
        ``valid_hit_at_1``).
    """
    settings = _floor_settings(evaluate_scenarios)
    rows = eval_candidates[(eval_candidates["scenario"] == "overall") & (eval_candidates["split"] == "valid")]
    rows = rows.reset_index(drop=True)
    if rows.empty:
        raise ConfigError("no 'overall' validation rows in eval_candidates: cf_text's weight needs them")
    backbone = load_backbone(cf_model, expected_n_items=len(item_index))
    domain = scorers.Domain(titles=item_titles(items, item_index))
    cf = scorers.score_cf(backbone, rows, domain).scores
    overlap = scorers.score_text_overlap(rows, domain, settings["n_history"]).scores
    targets = scorers.target_positions(rows)
    by_weight = {}
    for weight in settings["weights"]:
        fused = text_floors.fuse(cf, overlap, weight)
        by_weight[weight] = float(metrics.scores_per_row(fused, targets, ("hit_at_1",))["hit_at_1"].mean())
    best = max(by_weight, key=lambda w: (by_weight[w], -settings["weights"].index(w)))  # first on ties
    logger.info(
        "cf_text: weight %s chosen on %d validation rows (Hit@1 by weight: %s)",
        best,
        len(rows),
        {w: round(h, 3) for w, h in by_weight.items()},
    )
    choice = {
        "weight": best,
        "valid_rows": len(rows),
        "valid_hit_at_1_by_weight": {str(w): h for w, h in by_weight.items()},
    }
    return choice, {"weight": best, "valid_hit_at_1": by_weight[best]}


def choose_text_gate(  # noqa: PLR0913 (one argument per catalog input)
    cf_model,
    stage2_model,
    eval_candidates: pd.DataFrame,
    items: pd.DataFrame,
    item_index: pd.DataFrame,
    item_popularity: pd.DataFrame,
    item_title_vectors: pd.DataFrame,
    stage2: dict[str, Any],
    evaluate_scenarios: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The weights of ``cf_text_gate``, the stage-2 model's count gate without the LLM: among the gate's grid
    points that weigh the head 0, the gate the stage-2 bounds rule (``llm.gate_bounds.pick_gate``, against
    ``stage2.training.gate_bounds``, by ``stage2.training.gate_point``) picks on the first
    ``stage2.training.gate_valid_rows`` *validation* rows of each of ``overall``, ``cold_item`` and ``warm_item``:
    the rows and the rule the model's gate is chosen by.

    Returns:
        ``{weights, columns, ...the choice's figures}`` (``weights``: rows other candidates, cold ones) and its
        MLflow metrics; ``{}`` twice when no model list names ``cf_text_gate``.

    Raises:
        ConfigError: ``gate_valid_rows`` is 0 or a scenario has no validation row; the stage-2 model has no count
            gate.
    """
    wanted = "cf_text_gate" in {*evaluate_scenarios["models"], *evaluate_scenarios.get("ablation_models", [])}
    if not wanted:
        return {}, {}
    training = stage2["training"]
    n_rows = training.get("gate_valid_rows")
    if not n_rows:
        raise ConfigError(
            "cf_text_gate is chosen on the first stage2.training.gate_valid_rows validation rows of each scenario: "
            "set it to a positive integer, or leave cf_text_gate out of evaluate_scenarios.models"
        )
    bounds = GateBounds(**training["gate_bounds"])
    titles = item_titles(items, item_index)
    gate = _text_gate(stage2_model, titles, _title_vectors(item_title_vectors, len(item_index)))
    backbone = load_backbone(cf_model, expected_n_items=len(item_index))
    counts = popularity_counts(item_popularity, len(item_index))
    domain = scorers.Domain(titles=titles)
    inputs, cold, targets, rows_by_scenario = {}, {}, {}, {}
    for scenario in GATE_SCENARIOS:
        rows = validation_rows(eval_candidates, scenario).head(n_rows).reset_index(drop=True)
        if rows.empty:
            raise ConfigError(
                f"no {scenario!r} validation rows in eval_candidates: cf_text_gate's choice needs them"
            )
        candidates = np.stack(rows["candidates"].to_numpy()).astype(np.int64)
        cf = scorers.score_cf(backbone, rows, domain).scores
        inputs[scenario] = gate.inputs(list(rows["history"]), candidates, cf)
        cold[scenario] = gate.cold(counts[candidates])
        targets[scenario] = scorers.target_positions(rows)
        rows_by_scenario[scenario] = (rows, candidates)
    rows, candidates = rows_by_scenario["cold_item"]
    reference = overlap_hits(
        list(rows["history"]), candidates, gate.words, gate.config.n_history, targets["cold_item"]
    )
    points = gate.points()
    point = training["gate_point"]
    weights, figures = pick_gate(inputs, cold, targets, reference, points, bounds, seed, point)
    logger.info(
        "cf_text_gate: weights %s (columns %s; rows: other candidates, cold ones) chosen among %d points (%s) "
        "on %s validation rows; smallest slack %+.3f",
        weights.tolist(),
        gate.columns,
        len(points),
        point,
        "/".join(str(len(t)) for t in targets.values()),
        figures["smallest_slack"],
    )
    choice = {"weights": weights.tolist(), "columns": gate.columns, "points": len(points), **figures}
    return choice, {k: float(v) for k, v in figures.items()}


def _text_gate(
    checkpoint, titles: list[str], title_vectors: np.ndarray | None, foreign_items: bool = False
) -> TextGate:
    try:
        return TextGate.from_checkpoint(checkpoint, titles, title_vectors, foreign_items)
    except ValueError as exc:
        raise ConfigError(
            f"text_matcher / cooccurrence / cf_text_gate read the stage-2 model (stage2_model): {exc}"
        ) from exc


PREDICTION_COLUMNS = [
    "model",
    "scenario",
    "row",
    "user_idx",
    "target_item_idx",
    "candidates",
    "scores",
    "target_rank",
    "generation",
    "valid",
    "hit",
    "hit_lenient",
]


def evaluate_model(model_name: str, models_key: str = "models", **inputs: Any) -> pd.DataFrame:
    """Score one model on every scenario's frozen test rows (one node per model; see ``pipeline.py``).

    A model without an LLM (``cf`` and the floors) scores every row (``max_rows``); an LLM-based one a seeded
    subset of those rows (``max_llm_rows``; in the ablation run ``ablation_max_llm_rows``), the same subset for
    each of them. A model that
    ``evaluate_scenarios.<models_key>`` does not list scores nothing (an empty frame; its inputs were loaded).

    Args:
        model_name: The model (a name of ``MODELS``).
        models_key: The key of ``evaluate_scenarios`` that lists the models (``models``, or ``ablation_models``
            for the ablation run).
        **inputs: The catalog inputs the pipeline wires to this model: the frozen candidates and items of both
            domains, the CF model, the embeddings, the parameters, and what the model alone needs (its stage-2
            checkpoint, the title vectors, the ``cf_text`` weight).

    Returns:
        ``predictions`` (``PREDICTION_COLUMNS``); ``generation``, ``valid``, ``hit`` and ``hit_lenient`` are null
        in rank mode.
    """
    params = inputs["evaluate_scenarios"]
    if model_name not in params[models_key]:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    settings = _floor_settings(params)
    max_rows = _positive_or_null(params, "max_rows")
    max_llm_rows = _positive_or_null(
        params, "max_llm_rows" if models_key == "models" else "ablation_max_llm_rows"
    )
    scenario_caps = _scenario_caps(params)
    mode, seed = params["mode"], int(inputs["seed"])
    backbone = load_backbone(inputs["cf_model"], expected_n_items=len(inputs["item_index"]))
    stage2 = inputs["stage2"]
    domains = {"source": _source_domain(inputs, stage2)}
    scenarios = [s for s in params["scenarios"] if s != "cross_domain" or inputs["cross_domain_enabled"]]
    if "cross_domain" in scenarios:
        domains["cross_domain"] = _cross_domain(inputs, stage2)
    uses_llm = model_name not in WITHOUT_LLM
    # training interactions per item: the popularity model's scores and what the count gate reads
    counts = popularity_counts(inputs["item_popularity"], len(inputs["item_index"]))
    model = tokenizer = None
    if uses_llm:
        _, model, tokenizer = load_llm(inputs["llms"], inputs["llm"])
    frames, spent, scored_rows = [], 0.0, 0
    for scenario in scenarios:
        domain = domains["cross_domain" if scenario == "cross_domain" else "source"]
        source = inputs["cross_eval_candidates"] if scenario == "cross_domain" else inputs["eval_candidates"]
        rows = _rows(source, scenario, max_rows, seed)
        if rows.empty:
            logger.warning("Scenario %s has no test rows: skipped", scenario)
            continue
        floors = _FloorScores(backbone, rows, domain, settings["n_history"])
        if not uses_llm:
            if model_name == "popularity":  # the source domain's counts say nothing about foreign items
                scored = scorers.score_popularity(counts if scenario != "cross_domain" else None, rows)
            elif model_name == "cf_text":
                scored = scorers.Scored(
                    text_floors.fuse(
                        floors.cf.scores, floors.overlap.scores, inputs["cf_text_weight"]["weight"]
                    )
                )
            elif model_name in ("text_matcher", "cooccurrence", "cf_text_gate"):
                scored = _score_text_gate(
                    model_name,
                    _text_gate(inputs["stage2_model"], domain.titles, domain.title_vectors, domain.foreign),
                    rows,
                    floors.cf.scores,
                    counts if scenario != "cross_domain" else None,
                    inputs.get("cf_text_gate"),
                )
            else:
                scored = floors.get(model_name)
            frames.append(_predictions(model_name, scenario, rows, scored, "rank"))
            _log(frames[-1])
            continue
        subset = _llm_rows(rows, scenario, _smaller(max_llm_rows, scenario_caps.get(scenario)), seed)
        positions = np.searchsorted(
            rows["row"].to_numpy(), subset["row"].to_numpy()
        )  # rows are sorted by row
        users = user_vectors(backbone, list(subset["history"]), domain.cf_table)
        # cf's logits (what cf_skip adds to) and the candidates' training counts (the count gate's; another
        # domain's items were never trained on: 0)
        samples = row_samples(
            subset,
            users,
            floors.cf.scores[positions],
            counts if scenario != "cross_domain" else np.zeros(len(domain.titles), dtype=np.float64),
        )
        recommender = _recommender(
            model_name,
            inputs,
            model,
            tokenizer,
            domain,
            backbone.item_embeddings.detach(),
            backbone.hidden_size,
        )
        tick = time.perf_counter()
        scored = scorers.score_llm(
            recommender,
            samples,
            mode,
            int(params["batch_size"]),
            int(params["generate"]["max_new_tokens"]),
            float(params["generate"]["fuzzy_threshold"]),
            desc=f"{model_name} / {scenario}",
        )
        spent, scored_rows = spent + time.perf_counter() - tick, scored_rows + len(samples)
        frames.append(_predictions(model_name, scenario, subset, scored, mode))
        _log(frames[-1])
    if scored_rows:  # the cost figure: inference seconds per row, over every scenario the model scored
        prefix = "eval" if models_key == "models" else "eval.ablation"
        epoch_logger(f"{prefix}.{model_name}")(0, {"inference_seconds_per_row": spent / scored_rows})
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PREDICTION_COLUMNS)


def _score_text_gate(
    name: str,
    gate: TextGate,
    rows: pd.DataFrame,
    cf: np.ndarray,
    counts: np.ndarray | None,
    choice: dict[str, Any] | None,
) -> scorers.Scored:
    """``text_matcher``: the stage-2 model's text matcher alone; ``cooccurrence``: its co-occurrence score alone
    (another domain's items: 0, every candidate ties); ``cf_text_gate``: its gate's LLM-free inputs
    weighed by ``choice`` (``choose_text_gate``). ``counts``: the candidates' training interactions (``None``:
    another domain's items, never trained on: every candidate cold, as the model's gate reads them)."""
    candidates = np.stack(rows["candidates"].to_numpy()).astype(np.int64)
    histories = list(rows["history"])
    if name == "text_matcher":
        return scorers.Scored(gate.matcher_scores(histories, candidates))
    if name == "cooccurrence":
        return scorers.Scored(gate.cooccurrence_scores(histories, candidates))
    weights = torch.tensor(choice["weights"], dtype=torch.float32)
    if weights.shape != (2, len(gate.columns)):
        raise ConfigError(
            f"cf_text_gate's weights {choice['weights']} do not fit the stage-2 model's gate inputs "
            f"{gate.columns}: rerun the choose_text_gate node"
        )
    cold = gate.cold(np.zeros(candidates.shape) if counts is None else counts[candidates])
    return scorers.Scored(fuse_inputs(gate.inputs(histories, candidates, cf), cold, weights).double().numpy())


def collect_predictions(
    evaluate_scenarios: dict[str, Any],
    *frames: pd.DataFrame,
    wired: tuple[str, ...],
    models_key: str = "models",
    one_variant: str | None = None,
) -> pd.DataFrame:
    """The models' predictions as one table, in the order the report lists them: by scenario, the models
    without an LLM before the LLM-based ones, each group in the configured order.

    ``one_variant``: this is the one-variant ablation run of that variant (``ablations_<variant>``), which
    scores the listed models it wires and leaves the other listed ones to their own runs.

    Raises:
        ConfigError: ``evaluate_scenarios.<models_key>`` names a model that is unknown, or that this pipeline
            has no node for (``wired``: e.g. an ablation in ``models``).
    """
    model_names = list(evaluate_scenarios[models_key])
    unknown = sorted(set(model_names) - set(MODELS))
    if unknown:
        raise ConfigError(
            f"params 'evaluate_scenarios.{models_key}' has unknown model(s) {unknown}; known: {list(MODELS)}"
        )
    unwired = sorted(set(model_names) - set(wired))
    if unwired and one_variant:
        logger.info(
            "The %s ablation run scores %s; evaluate_scenarios.%s also lists %s, left to their own runs",
            one_variant,
            [m for m in model_names if m in wired],
            models_key,
            unwired,
        )
        model_names = [m for m in model_names if m in wired]
    elif unwired:
        raise ConfigError(
            f"params 'evaluate_scenarios.{models_key}' lists {unwired}, which this pipeline does not score: "
            "mlp_llm, tallrec and the stage-2 ablations are trained and evaluated by `kedro run --pipelines ablations` "
            "(evaluate_scenarios.ablation_models), and the text_cosine, cf_text, text_matcher, cooccurrence and cf_text_gate models by the "
            "default pipeline"
        )
    table = pd.concat([f for f in frames if len(f)], ignore_index=True)
    scenarios = {name: i for i, name in enumerate(evaluate_scenarios["scenarios"])}
    order = {name: (name not in WITHOUT_LLM, i) for i, name in enumerate(model_names)}
    keys = pd.DataFrame(
        {
            "scenario": table["scenario"].map(scenarios),
            "llm": table["model"].map(lambda m: order[m][0]),
            "model": table["model"].map(lambda m: order[m][1]),
            "position": np.arange(len(table)),
        }
    )
    return table.iloc[keys.sort_values(["scenario", "llm", "model", "position"]).index].reset_index(drop=True)


class _FloorScores:
    """The scores of ``cf`` and the text floors on one scenario's rows, each computed once when first asked."""

    def __init__(self, backbone, rows: pd.DataFrame, domain: scorers.Domain, n_history: int) -> None:
        self._backbone, self._rows, self._domain, self._n_history = backbone, rows, domain, n_history
        self._cache: dict[str, scorers.Scored] = {}

    def get(self, name: str) -> scorers.Scored:
        if name not in self._cache:
            if name == "cf":
                scored = scorers.score_cf(self._backbone, self._rows, self._domain)
            elif name == "text_overlap":
                scored = scorers.score_text_overlap(self._rows, self._domain, self._n_history)
            elif name == "text_cosine":
                scored = scorers.score_text_cosine(self._rows, self._domain, self._n_history)
            else:
                raise KeyError(name)
            self._cache[name] = scored
        return self._cache[name]

    @property
    def cf(self) -> scorers.Scored:
        return self.get("cf")

    @property
    def overlap(self) -> scorers.Scored:
        return self.get("text_overlap")


def _source_domain(inputs: dict[str, Any], stage2: dict[str, Any]) -> scorers.Domain:
    return scorers.Domain(
        titles=item_titles(inputs["items"], inputs["item_index"]),
        wording=wording_for(stage2, inputs["dataset"]),
        joint_table=embedding_table(inputs["joint_item_embeddings"], "e"),
        text_table=embedding_table(inputs["text_item_embeddings"], "q"),
        title_vectors=_title_vectors(inputs.get("item_title_vectors"), len(inputs["item_index"])),
    )


def _cross_domain(inputs: dict[str, Any], stage2: dict[str, Any]) -> scorers.Domain:
    foreign = inputs["foreign_item_embeddings"]
    return scorers.Domain(
        titles=item_titles(inputs["cross_items"], inputs["cross_item_index"]),
        wording=wording_for(stage2, inputs["cross_domain_dataset"]),
        cf_table=embedding_table(foreign, "cf_stand_in"),
        joint_table=embedding_table(foreign, "q"),  # foreign items take the text path
        text_table=embedding_table(foreign, "q"),
        title_vectors=_title_vectors(inputs.get("cross_item_title_vectors"), len(inputs["cross_item_index"])),
        foreign=True,
    )


def _title_vectors(frame: pd.DataFrame | None, n_items: int) -> np.ndarray | None:
    table = title_vector_table(frame, n_items)
    return None if table is None else table.numpy()


def _log(frame: pd.DataFrame) -> None:
    logger.info(
        "%s on %s: Hit@1 %.3f (n=%d)",
        frame["model"].iat[0],
        frame["scenario"].iat[0],
        _per_row(frame)["hit_at_1"].mean(),
        len(frame),
    )


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
    vectors = None if domain.title_vectors is None else torch.from_numpy(domain.title_vectors)
    return recommender_from_checkpoint(
        inputs[_checkpoint_input(name)],
        model,
        tokenizer,
        table,
        domain.titles,
        domain.wording,
        vectors,
        foreign_items=domain.foreign,
    )


def _checkpoint_input(model_name: str) -> str:
    """The catalog input holding a model's stage-2 checkpoint (A-LLMRec and its SBERT variant share one)."""
    return "stage2_model" if model_name in ("a_llmrec", "a_llmrec_sbert") else f"stage2_{model_name}_model"


def _predictions(
    name: str, scenario: str, rows: pd.DataFrame, scored: scorers.Scored, mode: str
) -> pd.DataFrame:
    targets = scorers.target_positions(rows)
    target_scores = scored.scores[np.arange(len(rows)), targets]
    better, ties = metrics.target_rank_counts(scored.scores, target_scores)
    generated = mode == "generate"
    nothing = [None] * len(rows)
    return pd.DataFrame(
        {
            "model": name,
            "scenario": scenario,
            "row": rows["row"].to_numpy(),
            "user_idx": rows["user_idx"].to_numpy(),
            "target_item_idx": rows["target_item_idx"].to_numpy(),
            "candidates": list(rows["candidates"]),
            "scores": list(scored.scores.astype(np.float32)),
            "target_rank": 1 + better + ties / 2.0,  # expected rank under random tie-breaking
            "generation": scored.generations if generated else nothing,
            "valid": [c is not None for c in scored.chosen] if generated else nothing,
            "hit": [c == t for c, t in zip(scored.chosen, targets, strict=True)] if generated else nothing,
            "hit_lenient": scored.lenient if generated else nothing,
        }
    )


def _per_row(group: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each metric per row of one model's predictions on one scenario (in the group's row order)."""
    if group["hit"].notna().all():  # generate mode: Hit@1, ValidRatio and the paper's lenient Hit@1
        per_row = {
            "hit_at_1": group["hit"].astype(float).to_numpy(),
            "valid_ratio": group["valid"].astype(float).to_numpy(),
        }
        if "hit_lenient" in group and group["hit_lenient"].notna().all():
            per_row["hit_at_1_lenient"] = group["hit_lenient"].astype(float).to_numpy()
        return per_row
    return metrics.scores_per_row(np.stack(group["scores"].to_numpy()), scorers.target_positions(group))


def summarize_scenarios(
    predictions: pd.DataFrame, evaluate_scenarios: dict[str, Any], seed: int
) -> tuple[pd.DataFrame, dict[str, float]]:
    """``scenario_metrics(model, scenario, metric, value, ci_low, ci_high, n)`` and the flat MLflow metrics
    ``{model}.{scenario}.{metric}`` (with ``_ci_low`` / ``_ci_high`` / ``_n``; under ``eval.`` in MLflow)."""
    resamples, confidence = _interval_settings(evaluate_scenarios)
    records, flat = [], {}
    for (model, scenario), group in predictions.groupby(["model", "scenario"], sort=False):
        for metric, stats in metrics.summarize(_per_row(group), resamples, confidence, seed).items():
            records.append({"model": model, "scenario": scenario, "metric": metric, **stats})
            key = f"{model}.{scenario}.{metric}"
            flat[key], flat[f"{key}_ci_low"], flat[f"{key}_ci_high"] = (
                stats["value"],
                stats["ci_low"],
                stats["ci_high"],
            )
            flat[f"{key}_n"] = stats["n"]
    table = pd.DataFrame.from_records(
        records, columns=["model", "scenario", "metric", "value", "ci_low", "ci_high", "n"]
    )
    return table, flat


def _interval_settings(evaluate_scenarios: dict[str, Any]) -> tuple[int, float]:
    return int(evaluate_scenarios["bootstrap_resamples"]), float(evaluate_scenarios["confidence"])


def compare_models(
    predictions: pd.DataFrame, evaluate_scenarios: dict[str, Any], seed: int
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Paired differences of every model against ``cf`` and against its scenario's best floor, and of every other
    LLM-based model against ``a_llmrec`` when it is scored too (a baseline's or an ablation's gap to the model).

    The best floor of a scenario is the floor (``popularity``, ``text_overlap``, ``text_cosine``, ``cf_text``)
    with the highest Hit@1 on that scenario's rows. Each difference uses only the rows both models scored; its
    interval is a paired bootstrap that resamples rows.

    Returns:
        ``paired_differences(model, scenario, reference, reference_model, metric, difference, ci_low, ci_high,
        n, significant)`` (``reference``: ``cf``, ``best_floor`` or ``a_llmrec``) and the flat MLflow metrics
        ``{model}.{scenario}.{metric}_minus_{reference}`` (with ``_ci_low`` / ``_ci_high``).
    """
    resamples, confidence = _interval_settings(evaluate_scenarios)
    records, flat = [], {}
    for scenario, frame in predictions.groupby("scenario", sort=False):
        per_row = {
            model: pd.DataFrame(_per_row(group), index=group["row"].to_numpy())
            for model, group in frame.groupby("model", sort=False)
        }
        floors = {m: v["hit_at_1"].mean() for m, v in per_row.items() if m in FLOORS}
        references = {"cf": "cf"} if "cf" in per_row else {}
        if floors:
            references["best_floor"] = max(floors, key=floors.get)
        for model, values in per_row.items():
            own = dict(references)
            if "a_llmrec" in per_row and model not in WITHOUT_LLM:
                own["a_llmrec"] = "a_llmrec"
            for reference, reference_model in own.items():
                if model == reference_model:
                    continue
                other = per_row[reference_model]
                shared = values.index.intersection(other.index)
                for metric in (m for m in PAIRED_METRICS if m in values and m in other):
                    stats = metrics.paired_bootstrap(
                        values.loc[shared, metric].to_numpy(),
                        other.loc[shared, metric].to_numpy(),
                        resamples,
                        confidence,
                        seed,
                    )
                    records.append(
                        {
                            "model": model,
                            "scenario": scenario,
                            "reference": reference,
                            "reference_model": reference_model,
                            "metric": metric,
                            **stats,
                        }
                    )
                    key = f"{model}.{scenario}.{metric}_minus_{reference}"
                    flat[key], flat[f"{key}_ci_low"], flat[f"{key}_ci_high"] = (
                        stats["difference"],
                        stats["ci_low"],
                        stats["ci_high"],
                    )
    columns = [
        "model",
        "scenario",
        "reference",
        "reference_model",
        "metric",
        "difference",
        "ci_low",
        "ci_high",
        "n",
        "significant",
    ]
    return pd.DataFrame.from_records(records, columns=columns), flat


def write_report(
    scenario_metrics: pd.DataFrame, paired_differences: pd.DataFrame, predictions: pd.DataFrame, dataset: str
) -> tuple[str, dict[str, Figure]]:
    """The markdown report (Hit@1 with its interval and row count; the paired differences against ``cf`` and
    the best floor; the random floor named) and one bar chart per scenario."""
    n_candidates = int(predictions["candidates"].map(len).max())
    title = f"Results on {dataset} (frozen candidate rows, {n_candidates} candidates each)"
    markdown = "\n".join(
        [
            report.markdown_table(scenario_metrics, "hit_at_1", n_candidates, title),
            report.paired_tables(paired_differences, "hit_at_1", list(dict.fromkeys(predictions["model"]))),
        ]
    )
    return markdown, report.bar_charts(scenario_metrics, "hit_at_1", n_candidates)
