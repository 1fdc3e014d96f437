"""Every model scores the same frozen candidate rows: the CF backbone, item popularity, the text floors, LLM-only,
A-LLMRec and its SBERT variant. Rank mode returns scores; generate mode also returns the raw generation, its mapped
candidate and the paper's lenient hit."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from allmrec_pipeline import text_floors
from allmrec_pipeline.llm.generation import generate, lenient_hit, map_to_candidate
from allmrec_pipeline.llm.inputs import cf_logits, user_vectors
from allmrec_pipeline.llm.recommender import Sample, SoftPromptRecommender
from allmrec_pipeline.llm.training import candidate_scores
from allmrec_pipeline.models.base import CFBackbone
from allmrec_pipeline.progress import progress_bar


@dataclass
class Domain:
    """What a scenario's rows need: the backbone's item table for histories (``None``: its own), the items'
    titles and the prompt wording."""

    titles: list[str]
    wording: dict[str, str] = field(default_factory=dict)
    cf_table: torch.Tensor | None = None  # stand-in CF embeddings of foreign items (cross-domain)
    joint_table: torch.Tensor | None = None  # e_i (or q_i for foreign items)
    text_table: torch.Tensor | None = None  # q_i
    title_vectors: np.ndarray | None = None  # (N+1, d) frozen sentence-encoder vectors of the titles
    foreign: bool = False  # another domain's items (cross-domain): the source's co-occurrence table has none

    @cached_property
    def words(self) -> list[frozenset[str]]:
        """Each title's word set (``text_floors.title_words``), by item index."""
        return [text_floors.title_words(t) for t in self.titles]


@dataclass
class Scored:
    scores: np.ndarray  # (R, C)
    generations: list[str | None] = field(default_factory=list)
    chosen: list[int | None] = field(default_factory=list)  # generate mode: the mapped candidate column
    lenient: list[bool] = field(default_factory=list)  # generate mode: the original code's substring hit


def target_positions(rows: pd.DataFrame) -> np.ndarray:
    """``(R,)`` the target's column among each row's candidates."""
    return np.array(
        [list(c).index(t) for c, t in zip(rows["candidates"], rows["target_item_idx"], strict=True)],
        dtype=np.int64,
    )


def _candidates(rows: pd.DataFrame) -> np.ndarray:
    return np.stack(rows["candidates"].to_numpy()).astype(np.int64)


def score_text_overlap(rows: pd.DataFrame, domain: Domain, n_history: int) -> Scored:
    """The ``text_overlap`` floor: Jaccard of each candidate title's words with the recent history's."""
    return Scored(
        text_floors.overlap_scores(list(rows["history"]), _candidates(rows), domain.words, n_history)
    )


def score_text_cosine(rows: pd.DataFrame, domain: Domain, n_history: int) -> Scored:
    """The ``text_cosine`` floor: cosine of each candidate's title vector with the recent history's mean."""
    if domain.title_vectors is None:
        raise ValueError("text_cosine needs the title vectors (the encode_item_titles node's output)")
    return Scored(
        text_floors.cosine_scores(list(rows["history"]), _candidates(rows), domain.title_vectors, n_history)
    )


def score_cf(backbone: CFBackbone, rows: pd.DataFrame, domain: Domain) -> Scored:
    """The backbone alone: ``score_vectors(x_u, E[candidates])`` (stand-ins for foreign items)."""
    users = user_vectors(backbone, list(rows["history"]), domain.cf_table)
    return Scored(cf_logits(backbone, users, list(rows["candidates"]), domain.cf_table))


def score_popularity(counts: np.ndarray | None, rows: pd.DataFrame) -> Scored:
    """Each candidate's training interactions: the item prior that sampled negatives reward, and the floor an
    LLM-based model should clear. ``None`` (another domain's items have no counts here): every candidate ties,
    which the metrics score as chance."""
    candidates = _candidates(rows)
    if counts is None:
        return Scored(np.zeros(candidates.shape, dtype=np.float64))
    return Scored(counts[candidates])


@torch.no_grad()
def score_llm(
    recommender: SoftPromptRecommender,
    samples: list[Sample],
    mode: str,
    batch_size: int,
    max_new_tokens: int,
    fuzzy_threshold: float,
    desc: str,
) -> Scored:
    """Rank mode: the recommender's scores (head or title log-likelihoods). Generate mode: greedy answers
    mapped to one candidate; the chosen one scores 1, the rest 0 (an invalid answer scores all 0)."""
    recommender.eval()
    if mode == "rank":
        return Scored(candidate_scores(recommender, samples, batch_size, desc))
    if mode != "generate":
        raise ValueError(f"unknown mode {mode!r}: rank or generate")
    scores = np.zeros((len(samples), len(samples[0].candidates)), dtype=np.float32)
    generations, chosen, lenient = [], [], []
    for start in progress_bar(range(0, len(samples), batch_size), desc=desc, unit="batch"):
        batch = samples[start : start + batch_size]
        texts = generate(recommender.llm, recommender.tokenizer, recommender.prompts(batch), max_new_tokens)
        for offset, (sample, text) in enumerate(zip(batch, texts, strict=True)):
            mapping = map_to_candidate(
                text, [recommender.titles[c] for c in sample.candidates], fuzzy_threshold
            )
            generations.append(text)
            chosen.append(mapping.index)
            lenient.append(lenient_hit(text, recommender.titles[sample.candidates[sample.target_pos]]))
            if mapping.index is not None:
                scores[start + offset, mapping.index] = 1.0
    return Scored(scores, generations, chosen, lenient)
