"""Nodes of ``generate_preferences``: each model names, in words, the favourite category of the users of the frozen
validation rows; answers are scored against the most frequent category of each user's held-out items."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.inputs import (
    LLM_ONLY,
    build_recommender,
    embedding_table,
    item_titles,
    load_llm,
    user_vectors,
    wording_for,
)
from allmrec_pipeline.llm.preferences import (
    favourite_labels,
    generate_answers,
    label_counts,
    labels_of,
    question,
    score_answers,
)
from allmrec_pipeline.llm.recommender import Sample, recommender_from_checkpoint
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.models.data import popularity_counts
from allmrec_pipeline.progress import progress_bar
from allmrec_pipeline.seeding import rng_for

logger = logging.getLogger(__name__)

LLM_MODELS = ("llm_only", "a_llmrec", "tallrec")  # the paper's three: the frozen LLM, A-LLMRec, TALLRec
REFERENCE = "a_llmrec"
GENERATION_COLUMNS = ["model", "user_idx", "generation", "answer", "label", "match", "exact", "normalised"]


def labels_by_item(items: pd.DataFrame, item_index: pd.DataFrame) -> list[list[str]] | None:
    """Each item index's category labels (index 0, padding: none); ``None`` when the items have no category."""
    if "category" not in items.columns or not items["category"].fillna("").astype(str).str.len().any():
        return None
    merged = item_index.merge(items[["item_id", "category"]], on="item_id", how="left").sort_values(
        "item_idx"
    )
    return [[], *(labels_of(c) for c in merged["category"])]


def held_out_items(sequence: list[int], history: list[int], target: int) -> list[int]:
    """The items of a user's full ``sequence`` from the validation row's ``target`` on: the last position whose
    item is ``target`` and whose preceding items end with ``history`` (the row's history may be truncated)."""
    tail = list(history)
    for position in range(len(sequence) - 1, -1, -1):
        before = sequence[:position]
        if (
            sequence[position] == target
            and len(before) >= len(tail)
            and before[len(before) - len(tail) :] == tail
        ):
            return sequence[position:]
    return [target]


def preference_rows(
    items: pd.DataFrame,
    item_index: pd.DataFrame,
    eval_candidates: pd.DataFrame,
    sequences: pd.DataFrame,
    params: dict[str, Any],
    seed: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The users asked, and what every model is told and scored against.

    The users are those of the frozen ``overall`` validation rows (stage 2 never trains on them), a seeded
    ``max_users`` of them. A user's history is the validation row's; the held-out items are the validation
    target and what follows it in the user's sequence (the test target); the truth, their most frequent labels.

    Returns:
        ``rows`` (``user_idx``, ``history``, ``held_out``, ``truth``) and the ``setup`` every model node reads:
        the label set (sorted), the counts of users asked and skipped; with no categories in ``items``, no rows
        and ``setup['skipped']`` saying why.
    """
    by_item = labels_by_item(items, item_index)
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in ("user_idx", "history", "held_out", "truth")})
    if by_item is None:
        reason = "the items have no category labels (no 'category' column, or every cell empty)"
        logger.warning("generate_preferences: %s; nothing to ask, skipped", reason)
        return empty, {"labels": [], "users": 0, "skipped": reason}
    rows = eval_candidates[(eval_candidates["scenario"] == "overall") & (eval_candidates["split"] == "valid")]
    rows = rows.drop_duplicates("user_idx").reset_index(drop=True)
    max_users = params["max_users"]
    if max_users is not None and len(rows) > max_users:
        keep = np.sort(
            rng_for(seed, "generate_preferences/users").choice(len(rows), max_users, replace=False)
        )
        rows = rows.iloc[keep].reset_index(drop=True)
    full = sequences.set_index("user_idx")["items"]
    held_out = [
        held_out_items(list(map(int, full[u])), list(map(int, h)), int(t))
        for u, h, t in zip(rows["user_idx"], rows["history"], rows["target_item_idx"], strict=True)
    ]
    truth = [favourite_labels(items_, by_item) for items_ in held_out]
    labelled = np.asarray([bool(t) for t in truth])
    table = pd.DataFrame(
        {
            "user_idx": rows["user_idx"].to_numpy()[labelled],
            "history": [list(map(int, h)) for h, k in zip(rows["history"], labelled, strict=True) if k],
            "held_out": [h for h, k in zip(held_out, labelled, strict=True) if k],
            "truth": [t for t, k in zip(truth, labelled, strict=True) if k],
        }
    )
    labels = sorted({label for item_labels in by_item for label in item_labels})
    setup = {
        "labels": labels,
        "users": len(table),
        # a label drawn at random is right this often: the truths are sets (ties), so chance is above 1/labels
        "chance": float(np.mean([len(t) / len(labels) for t in table["truth"]]))
        if len(table)
        else float("nan"),
        "skipped_users_without_labels": int((~labelled).sum()),
        "skipped": None,
    }
    if (~labelled).any():
        logger.warning(
            "generate_preferences: %d of %d users skipped: none of their held-out items has a category",
            int((~labelled).sum()),
            len(rows),
        )
    logger.info("generate_preferences: %d users, %d labels", len(table), len(labels))
    return table, setup


def _frame(model: str, rows: pd.DataFrame, generations: list[str], labels: list[str]) -> pd.DataFrame:
    scored = score_answers(generations, list(rows["truth"]), labels)
    return pd.DataFrame(
        {"model": model, "user_idx": rows["user_idx"].to_numpy(), "generation": generations, **scored}
    )[GENERATION_COLUMNS]


def answer_with_floors(
    rows: pd.DataFrame,
    setup: dict[str, Any],
    items: pd.DataFrame,
    item_index: pd.DataFrame,
    item_popularity: pd.DataFrame,
    stage2: dict[str, Any],
) -> pd.DataFrame:
    """The answers without an LLM: ``most_common``, the label with the most training interactions, for every user;
    ``history_majority``, the most frequent label among the items the prompt shows (the ``stage2.model.n_history``
    most recent; ties: the first in the sorted label set; no label: ``most_common``'s)."""
    if rows.empty:
        return pd.DataFrame(columns=GENERATION_COLUMNS)
    by_item = labels_by_item(items, item_index)
    labels = setup["labels"]
    counts = popularity_counts(item_popularity, len(item_index))
    mass = {label: 0.0 for label in labels}
    for item, item_labels in enumerate(by_item):
        for label in item_labels:
            mass[label] += counts[item]
    common = max(labels, key=lambda label: (mass[label], -labels.index(label)))
    n_history = int(stage2["model"]["n_history"])
    majority = []
    for history in rows["history"]:
        tally = label_counts(list(history)[-n_history:], by_item)
        majority.append(
            max(labels, key=lambda label: (tally[label], -labels.index(label))) if tally else common
        )
    return pd.concat(
        [
            _frame("most_common", rows, [common] * len(rows), labels),
            _frame("history_majority", rows, majority, labels),
        ],
        ignore_index=True,
    )


def answer_with_llm(
    model_name: str,
    rows: pd.DataFrame,
    setup: dict[str, Any],
    cf_model,
    joint_item_embeddings: pd.DataFrame,
    items: pd.DataFrame,
    item_index: pd.DataFrame,
    generate_preferences: dict[str, Any],
    stage2: dict[str, Any],
    llms: dict[str, Any],
    llm: str,
    dataset: str,
    checkpoint=None,
) -> pd.DataFrame:
    """One LLM-based model's greedy answers: ``llm_only`` (the frozen LLM, titles only), ``a_llmrec`` (its
    trained projectors: the user's and the history items' soft tokens) or ``tallrec`` (its LoRA adapters, titles
    only), each reading the same question about the same users."""
    if rows.empty:
        return pd.DataFrame(columns=GENERATION_COLUMNS)
    backbone = load_backbone(cf_model, expected_n_items=len(item_index))
    _, model, tokenizer = load_llm(llms, llm)
    titles, wording = item_titles(items, item_index), wording_for(stage2, dataset)
    table = embedding_table(joint_item_embeddings, "e")
    if model_name == "llm_only":
        recommender = build_recommender(
            model, tokenizer, stage2, wording, table, titles, backbone.hidden_size, LLM_ONLY
        )
    else:
        recommender = recommender_from_checkpoint(checkpoint, model, tokenizer, table, titles, wording)
    users = user_vectors(backbone, list(rows["history"]))
    samples = [
        Sample(vector, list(history), []) for vector, history in zip(users, rows["history"], strict=True)
    ]
    text = question(generate_preferences["template"], setup["labels"], generate_preferences["label_noun"])
    tick = time.perf_counter()
    with progress_bar(
        desc=f"{model_name}: favourite {generate_preferences['label_noun']}", unit="users", total=len(samples)
    ) as bar:
        generations = generate_answers(
            recommender,
            samples,
            text,
            int(generate_preferences["batch_size"]),
            int(generate_preferences["max_new_tokens"]),
            bar,
        )
    frame = _frame(model_name, rows, generations, setup["labels"])
    logger.info(
        "%s: favourite %s right for %.3f of %d users (normalised; exact %.3f) in %.1f s",
        model_name,
        generate_preferences["label_noun"],
        frame["normalised"].mean(),
        len(frame),
        frame["exact"].mean(),
        time.perf_counter() - tick,
    )
    return frame


def summarize_preferences(
    rows: pd.DataFrame,
    setup: dict[str, Any],
    items: pd.DataFrame,
    item_index: pd.DataFrame,
    generate_preferences: dict[str, Any],
    evaluate_scenarios: dict[str, Any],
    seed: int,
    *frames: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, float], str]:
    """Every model's accuracy (exact and normalised, each with its Wilson interval and the user count), the paired
    difference of each model to ``a_llmrec`` (normalised, paired bootstrap over users), every generation, and a
    report with a few users' answers side by side.

    Returns:
        ``preference_generations``, ``preference_metrics``, ``preference_differences``, their MLflow metrics
        (``preferences.<model>.<metric>``, ``_ci_low``, ``_ci_high``, ``_n``) and ``preferences_markdown``.
    """
    generations = (
        pd.concat([f for f in frames if len(f)], ignore_index=True)
        if any(len(f) for f in frames)
        else pd.DataFrame(columns=GENERATION_COLUMNS)
    )
    confidence = float(evaluate_scenarios["confidence"])
    resamples = int(evaluate_scenarios["bootstrap_resamples"])
    records, mlflow = [], {}
    for model, group in generations.groupby("model", sort=False):
        for metric in ("normalised", "exact"):
            values = group[metric].to_numpy(dtype=float)
            low, high = metrics.wilson_ci(values, confidence)
            records.append(
                {
                    "model": model,
                    "metric": metric,
                    "value": float(values.mean()),
                    "ci_low": low,
                    "ci_high": high,
                    "n": len(values),
                }
            )
            mlflow.update(
                {
                    f"{model}.{metric}": float(values.mean()),
                    f"{model}.{metric}_ci_low": low,
                    f"{model}.{metric}_ci_high": high,
                    f"{model}.{metric}_n": float(len(values)),
                }
            )
        mlflow[f"{model}.named_a_label"] = float(group["label"].notna().mean())
    if records:
        mlflow["chance"] = setup["chance"]
    table = pd.DataFrame(records, columns=["model", "metric", "value", "ci_low", "ci_high", "n"])
    differences = []
    by_model = {m: g.set_index("user_idx")["normalised"] for m, g in generations.groupby("model", sort=False)}
    if REFERENCE in by_model:
        reference = by_model[REFERENCE]
        for model, values in by_model.items():
            if model == REFERENCE:
                continue
            paired = metrics.paired_bootstrap(
                reference.to_numpy(), values.reindex(reference.index).to_numpy(), resamples, confidence, seed
            )
            differences.append({"model": REFERENCE, "reference": model, **paired})
            mlflow[f"{REFERENCE}_minus_{model}.normalised"] = paired["difference"]
            mlflow[f"{REFERENCE}_minus_{model}.normalised_ci_low"] = paired["ci_low"]
            mlflow[f"{REFERENCE}_minus_{model}.normalised_ci_high"] = paired["ci_high"]
    paired_table = pd.DataFrame(
        differences, columns=["model", "reference", "difference", "ci_low", "ci_high", "n", "significant"]
    )
    markdown = _report(
        rows, setup, items, item_index, generations, table, paired_table, generate_preferences, confidence
    )
    return generations, table, paired_table, mlflow, markdown


def _report(rows, setup, items, item_index, generations, table, paired, params, confidence: float) -> str:
    noun = params["label_noun"]
    if setup.get("skipped"):
        return f"# Favourite {noun}\n\nSkipped: {setup['skipped']}.\n"
    lines = [
        f"# Favourite {noun}: the language-generation task",
        "",
        f"{setup['users']} users (those of the frozen overall validation rows; "
        f"{setup['skipped_users_without_labels']} skipped: no held-out item with a {noun}); "
        f"{len(setup['labels'])} labels. Truth: the most frequent {noun} of the user's held-out items (ties: any); "
        f"a label drawn at random is right for {setup['chance']:.3f} of them.",
        "",
        f"Accuracy with its {confidence:.0%} Wilson interval; *names one label*: the share of answers that name "
        "exactly one "
        "label of the set, right or wrong.",
        "",
        "| model | normalised | exact | names one label | n |",
        "|---|---|---|---|---|",
    ]
    for model in generations["model"].drop_duplicates():
        cells = []
        for metric in ("normalised", "exact"):
            r = table[(table["model"] == model) & (table["metric"] == metric)].iloc[0]
            cells.append(f"{r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
        named = generations.loc[generations["model"] == model, "label"].notna().mean()
        lines.append(f"| {model} | {cells[0]} | {cells[1]} | {named:.3f} | {int(r['n'])} |")
    if len(paired):
        lines += [
            "",
            f"Paired differences ({REFERENCE} − model, normalised, bootstrap over users):",
            "",
            "| model | difference | n |",
            "|---|---|---|",
        ]
        for _, r in paired.iterrows():
            lines.append(
                f"| {r['reference']} | {r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | {r['n']} |"
            )
    shown = int(params["shown_users"])
    if shown:
        titles = item_titles(items, item_index)
        lines += ["", f"## {shown} users' answers", ""]
        answers = generations.set_index(["user_idx", "model"])["generation"]
        for _, row in rows.head(shown).iterrows():
            history = "; ".join(titles[i] for i in row["history"][-5:])
            lines += [
                f"**User {row['user_idx']}** — last history items: {history}. Truth: {', '.join(row['truth'])}.",
                "",
            ]
            lines += ["| model | generation |", "|---|---|"]
            for model in generations["model"].drop_duplicates():
                text = " ".join(str(answers.get((row["user_idx"], model), "")).split()).replace("|", "\\|")
                lines.append(f"| {model} | {text} |")
            lines.append("")
    return "\n".join(lines) + "\n"
