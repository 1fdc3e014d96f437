"""Rank mode: score each candidate by the LLM's log-likelihood of its title after the prompt.

The prompt runs once and its key/value cache is kept. The candidates' titles then run together as one packed
row after it, under a block-causal mask: each title token sees the prompt and the earlier tokens of its own
title only. That is one prompt pass plus one short pass, instead of one full prompt per candidate, and the
cache is never copied per candidate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from .prompt import PromptBatch


def _total(token_lp: torch.Tensor, lengths: torch.Tensor, normalize: bool) -> torch.Tensor:
    return token_lp / lengths.clamp(min=1) if normalize else token_lp


def score_continuations(
    model: PreTrainedModel, prompt: PromptBatch, continuations: list[list[int]], normalize: bool = True
) -> torch.Tensor:
    """Log-likelihood ``(C,)`` of each continuation after a single prompt (batch of 1), reusing its cache.

    ``normalize`` divides each sum by the continuation's length (token count).
    """
    if prompt.inputs_embeds.shape[0] != 1:
        raise ValueError("score_continuations takes one prompt at a time")
    if any(len(c) == 0 for c in continuations):
        raise ValueError("every continuation needs at least one token")
    device = prompt.attention_mask.device
    # only the prompt's last position predicts (every title's first token): no (L, vocabulary) logits
    out = model(**prompt.model_inputs(), use_cache=True, logits_to_keep=1)
    lengths = torch.as_tensor([len(c) for c in continuations], device=device)
    ids = torch.as_tensor([t for c in continuations for t in c], device=device)  # (S,) packed
    owner = torch.repeat_interleave(torch.arange(len(continuations), device=device), lengths)  # (S,)
    offset = torch.cat([torch.arange(n, device=device) for n in lengths.tolist()])  # (S,) within its title
    # token j sees the unpadded prompt and the tokens of its own title up to itself
    own = (owner[:, None] == owner[None, :]) & (offset[None, :] <= offset[:, None])  # (S, S)
    allowed = torch.cat([prompt.attention_mask.bool().expand(len(ids), -1), own], dim=1)  # (S, L+S)
    dtype = prompt.inputs_embeds.dtype
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    mask = mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]  # (1, 1, S, L+S), additive
    start = int(prompt.position_ids[0, -1]) + 1
    later = model(
        input_ids=ids[None], attention_mask=mask, position_ids=(start + offset)[None], cache=out.cache
    ).logits[0]  # (S, V): row j predicts the token after j in its title
    first_lp = F.log_softmax(out.logits[0, -1].float(), dim=-1)  # predicts every title's first token
    later_lp = F.log_softmax(later.float(), dim=-1)
    is_first = offset == 0
    previous = (torch.arange(len(ids), device=device) - 1).clamp(min=0)
    token_lp = torch.where(
        is_first, first_lp[ids], later_lp[previous, ids]
    )  # (S,): a title's first token from the prompt, the rest from the token before it
    totals = torch.zeros(len(continuations), device=device).index_add_(0, owner, token_lp)
    return _total(totals, lengths.float(), normalize)


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
        # position t predicts token t+1: the title's tokens from the prompt's last position on
        lp = F.log_softmax(logits[0, prompt_len - 1 : -1].float(), dim=-1)  # (T, V)
        token_lp = lp.gather(1, ids[0, :, None]).sum()
        scores.append(
            _total(
                token_lp[None], torch.tensor([float(len(continuation))], device=token_lp.device), normalize
            )
        )
    return torch.cat(scores)
