"""The trained recommender as a service: a bundle of what inference needs, and requests answered from it.

A bundle is a folder: the CF checkpoint, the stage-2 projector checkpoint (which names its LLM and wording), and
``items.parquet`` (item index, id, title, training interactions, the item table stage 2 reads and the title
vectors its count gate weighs). Never a copy
of the LLM: the projector checkpoint names it (``embedded:smollm2``, a local directory, a cached hub id), and it
is loaded where the bundle is served.

A request is ``{"history": [item_id, ...], "k": 10, "candidates": [item_id, ...]}`` (candidates optional) per
user. Without candidates the CF model retrieves the ``retrieve`` best items of the whole catalogue (the history
left out) and the stage-2 model re-ranks them; with candidates it ranks those. Unknown ids are dropped and
listed; a history with no known item falls back to popularity and says so.

Plain PyTorch and pandas: nothing here knows Kedro; MLflow appears only in ``pyfunc_model.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import safetensors.torch
import torch

from allmrec_pipeline.llm.inputs import cf_logits, embedding_table, user_vectors
from allmrec_pipeline.llm.loading import LLMSpec, load_frozen_llm
from allmrec_pipeline.llm.recommender import Sample, SoftPromptRecommender, recommender_from_checkpoint
from allmrec_pipeline.models.checkpoint import Checkpoint, load_backbone

CF_FILE, STAGE2_FILE, ITEMS_FILE, CONFIG_FILE = (
    "cf_model.safetensors",
    "stage2_projectors.safetensors",
    "items.parquet",
    "serving.json",
)


class RequestError(ValueError):
    """A request that cannot be answered as sent; the message names the field."""


def write_bundle(
    folder: str | Path,
    cf_model: Checkpoint,
    stage2_model: Checkpoint,
    items: pd.DataFrame,
    settings: dict[str, Any],
) -> Path:
    """Write a bundle: the two checkpoints, ``items`` (``item_idx, item_id, title, count, vector`` and
    ``title_vector``, null when none were encoded) and the
    serving ``settings`` (``retrieve``, ``k``, ``batch_size``, ``dataset``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, checkpoint in ((CF_FILE, cf_model), (STAGE2_FILE, stage2_model)):
        metadata = {key: str(value) for key, value in checkpoint.metadata.items()}
        safetensors.torch.save_file(dict(checkpoint.tensors), str(folder / name), metadata=metadata)
    items.to_parquet(folder / ITEMS_FILE, index=False)
    (folder / CONFIG_FILE).write_text(json.dumps(settings, indent=2))
    return folder


def _read_checkpoint(path: Path) -> Checkpoint:
    with safetensors.safe_open(str(path), "pt") as handle:
        metadata = handle.metadata() or {}
    return Checkpoint(safetensors.torch.load_file(str(path)), metadata)


@dataclass
class Recommendations:
    """One user's answer."""

    item_ids: list[str]
    titles: list[str]
    scores: list[float]
    model: str  # which model produced the order
    unknown_ids: list[str]  # ids of the request that are not in the catalogue (dropped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_ids": self.item_ids,
            "titles": self.titles,
            "scores": self.scores,
            "model": self.model,
            "unknown_ids": self.unknown_ids,
        }


class ServingRecommender:
    """Answers requests from a bundle (``from_bundle``); ``recommend`` takes a batch of users."""

    def __init__(
        self,
        backbone,
        recommender: SoftPromptRecommender,
        items: pd.DataFrame,
        settings: dict[str, Any],
    ) -> None:
        self.backbone, self.recommender, self.settings = backbone.eval(), recommender.eval(), settings
        items = items.sort_values("item_idx").reset_index(drop=True)
        self.ids = [""] + items["item_id"].astype(str).tolist()
        self.titles = recommender.titles  # by item index, as the bundle's items
        self.index = {item_id: i for i, item_id in enumerate(self.ids) if i}
        self.counts = np.concatenate([[0.0], items["count"].to_numpy(dtype=np.float64)])

    @classmethod
    def from_bundle(
        cls, folder: str | Path, llm_override: dict[str, Any] | None = None
    ) -> ServingRecommender:
        """Load a bundle and its LLM (``llm_override``: another ``LLMSpec`` for the same LLM, e.g. a local
        directory on the serving machine)."""
        folder = Path(folder)
        settings = json.loads((folder / CONFIG_FILE).read_text())
        items = pd.read_parquet(folder / ITEMS_FILE).sort_values("item_idx").reset_index(drop=True)
        backbone = load_backbone(_read_checkpoint(folder / CF_FILE), expected_n_items=len(items))
        stage2 = _read_checkpoint(folder / STAGE2_FILE)
        spec = LLMSpec(**(llm_override or json.loads(stage2.metadata["llm"])))
        model, tokenizer = load_frozen_llm(spec)
        table = torch.cat(
            [
                torch.zeros(1, len(items["vector"].iloc[0])),
                torch.from_numpy(np.stack(items["vector"]).astype(np.float32)),
            ]
        )
        titles = [""] + items["title"].astype(str).tolist()
        title_vectors = None
        if "title_vector" in items and items["title_vector"].notna().all():
            title_vectors = embedding_table(items, "title_vector")
        recommender = recommender_from_checkpoint(
            stage2, model, tokenizer, table, titles, title_vectors=title_vectors
        )
        return cls(backbone, recommender, items, settings)

    def recommend(self, requests: list[dict[str, Any]]) -> list[Recommendations]:
        """Answer each request; the stage-2 model scores every user's candidates in batches."""
        parsed = [self._parse(i, request) for i, request in enumerate(requests)]
        answers: list[Recommendations | None] = [None] * len(parsed)
        llm_rows = []
        for position, (history, candidates, k, unknown) in enumerate(parsed):
            if not history:  # nothing known about the user: the most interacted-with items
                pool = candidates if candidates else list(range(1, len(self.ids)))
                scores = self.counts[pool]
                answers[position] = self._answer(
                    pool, scores, k, "popularity (no known item in the history)", unknown
                )
            else:
                llm_rows.append((position, history, candidates, k, unknown))
        if llm_rows:
            self._rank(llm_rows, answers)
        return answers

    @torch.no_grad()
    def _rank(self, rows: list, answers: list) -> None:
        histories = [history for _, history, _, _, _ in rows]
        users = user_vectors(self.backbone, histories)
        samples, pools = [], []
        for row, (_, history, candidates, _, _) in enumerate(rows):
            if candidates:
                pool = candidates
            else:  # retrieval: the CF model's best items (column 0, padding, is -inf), the history left out
                scores = self.backbone.score_every_item(users[row : row + 1]).float()[0]
                scores[torch.as_tensor(history)] = float("-inf")
                pool = torch.topk(
                    scores, min(int(self.settings["retrieve"]), len(self.ids) - 1 - len(set(history)))
                ).indices.tolist()
            pools.append(pool)
            logits = cf_logits(self.backbone, users[row : row + 1], [pool])[0]  # as evaluate_scenarios
            samples.append(
                Sample(
                    users[row],
                    history,
                    pool,
                    None,
                    torch.as_tensor(logits),
                    torch.as_tensor(self.counts[pool]),
                )
            )
        batch = int(self.settings["batch_size"])
        for start in range(0, len(samples), batch):
            scores = self.recommender.scores(samples[start : start + batch]).float().cpu().numpy()
            for offset, row_scores in enumerate(scores):
                position, _, _, k, unknown = rows[start + offset]
                pool = pools[start + offset]
                answers[position] = self._answer(pool, row_scores[: len(pool)], k, "a_llmrec", unknown)

    def _answer(
        self, pool: list[int], scores: np.ndarray, k: int, model: str, unknown: list[str]
    ) -> Recommendations:
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
        return Recommendations(
            [self.ids[pool[i]] for i in order],
            [self.titles[pool[i]] for i in order],
            [float(scores[i]) for i in order],
            model,
            unknown,
        )

    def _parse(self, position: int, request: Any) -> tuple[list[int], list[int], int, list[str]]:
        where = f"request {position}"
        if not isinstance(request, dict):
            raise RequestError(f"{where}: expected an object with 'history', got {type(request).__name__}")
        history = _id_list(request.get("history"), f"{where}: 'history'", required=True)
        candidates = _id_list(request.get("candidates"), f"{where}: 'candidates'", required=False)
        k = request.get("k", self.settings["k"])
        if k is None or (isinstance(k, float) and np.isnan(k)):
            k = self.settings["k"]
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise RequestError(f"{where}: 'k' must be a whole number >= 1, got {k!r}")
        known_history = [self.index[i] for i in history if i in self.index]
        known_candidates = list(dict.fromkeys(self.index[i] for i in candidates if i in self.index))
        unknown = [i for i in [*history, *candidates] if i not in self.index]
        if candidates and not known_candidates:
            raise RequestError(f"{where}: 'candidates': no id is in the catalogue ({candidates[:5]})")
        return known_history, known_candidates, int(k), unknown


def _id_list(value: Any, where: str, required: bool) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        if required:
            raise RequestError(f"{where} is missing: a list of item ids (it may be empty)")
        return []
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise RequestError(f"{where} must be a list of item ids, got {type(value).__name__}")
    if not all(isinstance(item, str | int) and not isinstance(item, bool) for item in value):
        raise RequestError(f"{where} must hold item ids (strings), got {value[:5]}")
    return [str(item) for item in value]
