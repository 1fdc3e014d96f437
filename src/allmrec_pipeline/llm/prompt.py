"""Prompts with soft tokens: text pieces go through the LLM's own token-embedding table, and projected CF
vectors are spliced in at their placeholders. No vocabulary is resized, so any causal LM works unchanged.

A template is plain text with three placeholders: ``[UserRep]``, ``[HistoryEmb]`` and ``[CandidateEmb]``.
The k-th ``[HistoryEmb]`` receives the k-th history item's vector, and likewise for candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

USER, HISTORY, CANDIDATE = "[UserRep]", "[HistoryEmb]", "[CandidateEmb]"
SOFT_KINDS = {USER: "user", HISTORY: "history", CANDIDATE: "candidate"}
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in SOFT_KINDS))


@dataclass
class PromptTemplate:
    """The A-LLMRec prompt, with the dataset's wording (noun, verbs) filled in from config."""

    text: str  # with {verb}, {verb_present}, {noun}, {history} and {candidates}
    history_item: str = '"{title}"' + HISTORY
    candidate_item: str = '"{title}"' + CANDIDATE
    separator: str = ", "

    def render(self, wording: dict[str, str], history_titles: list[str], candidate_titles: list[str]) -> str:
        history = self.separator.join(self.history_item.format(title=t) for t in history_titles)
        candidates = self.separator.join(self.candidate_item.format(title=t) for t in candidate_titles)
        return self.text.format(history=history, candidates=candidates, **wording)


@dataclass
class TokenizedPrompt:
    """Token ids with ``-1`` where a soft token goes, and the positions of each kind of soft token."""

    input_ids: list[int]
    positions: dict[str, list[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)


def tokenize_prompt(
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    add_bos: bool = True,
    cache: dict[str, list[int]] | None = None,
) -> TokenizedPrompt:
    """Tokenize the text between placeholders piece by piece (no special tokens), a ``-1`` per placeholder.

    ``cache`` (piece -> ids, filled as it goes) saves tokenizer calls: the pieces are mostly titles, which recur
    across prompts; the ids are the same with or without it."""

    def piece(text: str) -> list[int]:
        if cache is None:
            return tokenizer(text, add_special_tokens=False)["input_ids"]
        if text not in cache:
            cache[text] = tokenizer(text, add_special_tokens=False)["input_ids"]
        return cache[text]

    ids: list[int] = []
    positions: dict[str, list[int]] = {kind: [] for kind in SOFT_KINDS.values()}
    if add_bos and tokenizer.bos_token_id is not None:
        ids.append(tokenizer.bos_token_id)
    cursor = 0
    for match in _PLACEHOLDER.finditer(text):
        ids += piece(text[cursor : match.start()])
        positions[SOFT_KINDS[match.group()]].append(len(ids))
        ids.append(-1)
        cursor = match.end()
    ids += piece(text[cursor:])
    return TokenizedPrompt(ids, positions)


@dataclass
class PromptBatch:
    """Left-padded ``inputs_embeds`` ``(B, L, H)``, ``attention_mask`` ``(B, L)``, ``position_ids`` and the
    soft-token positions of each row (shifted by its padding)."""

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    positions: list[dict[str, list[int]]]

    def model_inputs(self) -> dict[str, Any]:
        return {
            "inputs_embeds": self.inputs_embeds,
            "attention_mask": self.attention_mask,
            "position_ids": self.position_ids,
        }


def embed_prompts(
    embedding: torch.nn.Embedding,
    prompts: list[TokenizedPrompt],
    soft: list[dict[str, torch.Tensor]],
    suffix_ids: list[list[int]] | None = None,
) -> PromptBatch:
    """Build one left-padded batch of prompt embeddings.

    Args:
        embedding: The LLM's input embedding table (frozen).
        prompts: Tokenized prompts.
        soft: Per prompt, ``{"user": (n_u, H), "history": (n_h, H), "candidate": (n_c, H)}``: the projected
            vectors, as many of each kind as the prompt has placeholders.
        suffix_ids: Optional token ids appended after each prompt (e.g. the target title for the LM loss).
    """
    suffix_ids = suffix_ids or [[] for _ in prompts]
    lengths = [len(p) + len(s) for p, s in zip(prompts, suffix_ids, strict=True)]
    width = max(lengths)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for row, (prompt, suffix) in enumerate(zip(prompts, suffix_ids, strict=True)):
        tokens = torch.as_tensor(prompt.input_ids + list(suffix))
        ids[row, width - len(tokens) :] = tokens.clamp(min=0)
        mask[row, width - len(tokens) :] = 1
    device = embedding.weight.device
    ids, mask = ids.to(device), mask.to(device)
    embeds = embedding(ids)  # (B, L, H); placeholder rows are overwritten below
    shifted = []
    rows, cols, vectors = [], [], []
    for row, (prompt, vectors_by_kind) in enumerate(zip(prompts, soft, strict=True)):
        offset = width - lengths[row]
        positions = {kind: [offset + p for p in pos] for kind, pos in prompt.positions.items()}
        shifted.append(positions)
        for kind, pos in positions.items():
            if not pos:
                continue
            given = vectors_by_kind[kind]
            if given.shape[0] != len(pos):
                raise ValueError(
                    f"prompt {row} has {len(pos)} {kind} placeholder(s) but {given.shape[0]} vector(s) were given"
                )
            rows += [row] * len(pos)
            cols += pos
            vectors.append(given)
    if vectors:
        index = (torch.as_tensor(rows, device=device), torch.as_tensor(cols, device=device))
        embeds = embeds.index_put(index, torch.cat(vectors).to(embeds.dtype))
    position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return PromptBatch(embeds, mask, position_ids, shifted)
