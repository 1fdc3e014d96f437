"""The count gate without the LLM: the LLM-free reference a gated stage-2 model is judged against.

A gated stage-2 model scores each candidate ``a(c)·z(CF) + b(c)·z(head) + o(c)·z(text_overlap) + s(c)·z(text
matcher)`` (``+ k(c)·z(co-occurrence)``), the weights by the candidate's group (cold: at most ``gate_max_count``
training interactions). All of it but ``z(head)`` is LLM-free: the CF model's logits, the titles' word overlap, the
text matcher, a low-rank adaptation of a frozen sentence encoder's title vectors fitted on the training transitions
(``llm.text_matcher``), and the items' co-occurrence in the training sequences (``allmrec_pipeline.cooccurrence``).
``TextGate`` scores those inputs from the stage-2 checkpoint (its configuration and its fitted matcher) without
loading an LLM, so that evaluation can score what the model's gate gets without the LLM: the text matcher alone
(``text_matcher``) and the gate over its LLM-free inputs, with weights chosen by the stage-2 bounds rule on the same
validation rows among the grid points that weigh the head 0 (``cf_text_gate``).

Plain PyTorch and NumPy: nothing of Kedro or MLflow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import torch

from allmrec_pipeline.cooccurrence import CooccurrenceTable, cooccurrence_scores
from allmrec_pipeline.models.checkpoint import require_kind
from allmrec_pipeline.text_floors import title_words, zscore_rows

from .recommender import (
    LEGACY_STAGE2,
    Stage2Config,
    checkpoint_cooccurrence,
    cooccurrence_column,
    text_columns,
)
from .text_matcher import TextMatcher, match_scores
from .training import model_gate_points


@dataclass
class TextGate:
    """A gated stage-2 model's LLM-free inputs: its configuration, its text matcher (``None`` without
    ``gate_cosine_rank``), the items' title words and vectors (``(N+1, d)``, unit length) and its co-occurrence
    table (``None`` without ``gate_cooccurrence``, or for another domain's items)."""

    config: Stage2Config
    words: list[frozenset[str]]
    title_vectors: np.ndarray | None
    matcher: TextMatcher | None
    cooccurrence: CooccurrenceTable | None = None
    _matcher_vectors: torch.Tensor | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_checkpoint(
        cls, checkpoint, titles: list[str], title_vectors: np.ndarray | None, foreign_items: bool = False
    ) -> TextGate:
        """From a stage-2 projector checkpoint and the items it is to score (``titles``; ``title_vectors``
        by item index, which a gate weighing the text matcher or the cosine needs; ``foreign_items``: another
        domain's items, which the co-occurrence table does not index).

        Raises:
            ValueError: the checkpoint's model has no count gate, or its gate needs the title vectors and none
                were given.
        """
        meta = require_kind(checkpoint, "stage2_projectors")
        config = Stage2Config(**{**LEGACY_STAGE2, **json.loads(meta["config"])})
        if not (config.cf_skip and config.gate_max_count is not None):
            raise ValueError(
                "this stage-2 model has no count gate (stage2.model.cf_skip true and gate_max_count set): "
                "there is no LLM-free gate to score"
            )
        if config.gate_text_cosine and title_vectors is None:
            raise ValueError("this stage-2 model's gate weighs the titles' vectors: pass item_title_vectors")
        matcher = None
        if "matcher.a" in checkpoint.tensors:
            a, b = checkpoint.tensors["matcher.a"], checkpoint.tensors["matcher.b"]
            matcher = TextMatcher(int(a.shape[0]), int(a.shape[1])).requires_grad_(False)
            matcher.load_state_dict({"a": a.float(), "b": b.float()})
            matcher.eval()
        vectors = None if title_vectors is None else np.asarray(title_vectors, dtype=np.float64)
        table = None if foreign_items else checkpoint_cooccurrence(checkpoint)
        if config.gate_cooccurrence and not foreign_items and table is None:
            raise ValueError(
                "this stage-2 model's gate weighs co-occurrence, but its checkpoint holds no table"
            )
        return cls(config, [title_words(t) for t in titles], vectors, matcher, table)

    @property
    def columns(self) -> list[str]:
        """The names of ``inputs``' columns."""
        names = ["cf"]
        if self.config.gate_text_overlap:
            names.append("text_overlap")
        if self.config.gate_text_cosine:
            names.append("text_matcher" if self.matcher is not None else "text_cosine")
        if self.config.gate_cooccurrence:
            names.append("cooccurrence")
        return names

    def inputs(self, histories: list, candidates: np.ndarray, cf_logits: np.ndarray) -> torch.Tensor:
        """``(R, C, K)``: z(CF logits) and the gate's z-scored text inputs (``recommender.text_columns``), as the
        stage-2 model's ``gate_inputs`` computes them, less its z(head) column."""
        cf = torch.from_numpy(zscore_rows(np.asarray(cf_logits, dtype=np.float32))).float()
        text = text_columns(
            self.config, histories, candidates, self.words, self.title_vectors, self.matcher, self._vectors()
        )
        text += cooccurrence_column(self.config, self.cooccurrence, histories, candidates)
        return torch.stack([cf, *text], dim=-1)

    def cold(self, candidate_counts: np.ndarray) -> torch.Tensor:
        """``(R, C)`` true where a candidate has at most ``gate_max_count`` training interactions."""
        return torch.as_tensor(np.asarray(candidate_counts)) <= self.config.gate_max_count

    def matcher_scores(self, histories: list, candidates: np.ndarray) -> np.ndarray:
        """``(R, C)`` the text matcher's scores of ``candidates`` for ``histories`` (not z-scored).

        Raises:
            ValueError: the model has no text matcher (``gate_cosine_rank`` null).
        """
        if self.matcher is None:
            raise ValueError(
                "this stage-2 model has no text matcher (stage2.model.gate_cosine_rank null): text_matcher "
                "scores the matcher a stage-2 model fitted"
            )
        return match_scores(self.matcher, histories, candidates, self._vectors(), self.config.n_history)

    def cooccurrence_scores(self, histories: list, candidates: np.ndarray) -> np.ndarray:
        """``(R, C)`` each candidate's co-occurrence score with the history (not log-scaled nor z-scored; 0 for
        another domain's items).

        Raises:
            ValueError: the model's gate does not weigh co-occurrence (``gate_cooccurrence`` false).
        """
        if not self.config.gate_cooccurrence:
            raise ValueError(
                "this stage-2 model's gate does not weigh co-occurrence (stage2.model.gate_cooccurrence false): "
                "the cooccurrence model scores the table a stage-2 model saved"
            )
        if self.cooccurrence is None:
            return np.zeros(np.asarray(candidates).shape)
        return cooccurrence_scores(
            self.cooccurrence, histories, candidates, self.config.n_history, self.config.cooccurrence_decay
        )

    def points(self) -> list[torch.Tensor]:
        """The gate's grid (``training.gate_points``) less the points that weigh the head, its column dropped
        (``(2, K)`` each, in the grid's order: the first weighs the CF logits alone)."""
        grid = model_gate_points(self.config)
        keep = [p for p in grid if not p[:, 1].any()]
        return [torch.cat([p[:, :1], p[:, 2:]], dim=1) for p in keep]

    def _vectors(self) -> torch.Tensor | None:
        if self.matcher is None or self.title_vectors is None:
            return None
        if self._matcher_vectors is None:
            self._matcher_vectors = torch.as_tensor(self.title_vectors, dtype=torch.float32)
        return self._matcher_vectors
