"""Rank mode: score each candidate by the LLM's log-likelihood of its title after the prompt.

The prompt is run once; its key/value cache is repeated for the candidates, whose titles then run as one
batch of continuations (instead of one full prompt per candidate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from .prompt import PromptBatch


def _pad_right(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask


def _total(
    first_logits: torch.Tensor,
    later_logits: torch.Tensor,
    ids: torch.Tensor,
    mask: torch.Tensor,
    normalize: bool,
) -> torch.Tensor:
    """Sum (or mean) of the log-probabilities of continuation tokens ``ids`` ``(C, T)``.

    ``first_logits`` ``(C, V)`` predict token 0; ``later_logits`` ``(C, T, V)`` at step t predict token t+1.
    """
    logits = torch.cat([first_logits.unsqueeze(1), later_logits[:, :-1]], dim=1).float()  # (C, T, V)
    token_lp = F.log_softmax(logits, dim=-1).gather(2, ids.unsqueeze(-1)).squeeze(-1)  # (C, T)
    total = (token_lp * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1) if normalize else total


def score_continuations(
    model: PreTrainedModel, prompt: PromptBatch, continuations: list[list[int]], normalize: bool = True
) -> torch.Tensor:
    """Log-likelihood ``(C,)`` of each continuation after a single prompt (batch of 1), reusing its cache."""
    if prompt.inputs_embeds.shape[0] != 1:
        raise ValueError("score_continuations takes one prompt at a time")
    out = model(**prompt.model_inputs(), use_cache=True)
    cache = out.past_key_values
    n = len(continuations)
    cache.batch_repeat_interleave(n)
    ids, mask = (t.to(prompt.attention_mask.device) for t in _pad_right(continuations))
    start = int(prompt.position_ids[0, -1]) + 1
    later = model(
        input_ids=ids,
        attention_mask=torch.cat([prompt.attention_mask.expand(n, -1), mask], dim=1),
        position_ids=start + torch.arange(ids.shape[1], device=ids.device).expand(n, -1),
        cache=cache,
    ).logits  # (C, T, V)
    return _total(out.logits[:, -1].expand(n, -1), later, ids, mask, normalize)


def score_continuations_naive(
    model: PreTrainedModel, prompt: PromptBatch, continuations: list[list[int]], normalize: bool = True
) -> torch.Tensor:
    """The same scores with one full forward pass per candidate (the reference for tests and benchmarks)."""
    embedding = model.get_input_embeddings()
    scores = []
    for continuation in continuations:
        ids = torch.as_tensor([continuation], device=prompt.attention_mask.device)
        embeds = torch.cat([prompt.inputs_embeds, embedding(ids).to(prompt.inputs_embeds.dtype)], dim=1)
        mask = torch.cat([prompt.attention_mask, torch.ones_like(ids)], dim=1)
        position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
        logits = model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids
        ).logits  # (1, L+T, V)
        prompt_len = prompt.inputs_embeds.shape[1]
        scores.append(
            _total(logits[:, prompt_len - 1], logits[:, prompt_len:], ids, torch.ones_like(ids), normalize)
        )
    return torch.cat(scores)
