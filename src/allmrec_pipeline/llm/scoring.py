"""Rank mode: score each candidate by the LLM's log-likelihood of its title after the prompt.

The prompts of a batch run once, together, and their key/value cache is kept. Each prompt's candidate titles
then run as one packed row after it (the rows of the batch padded to the longest), under a block-causal mask:
each title token sees its own prompt and the earlier tokens of its own title only. That is one prompt pass plus
one short pass for the whole batch, instead of one full prompt per candidate, and the cache is never copied per
candidate. The recommender passes one prompt at a time: on the CPU padded batches measured slower (docs/experiments.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from .prompt import PromptBatch


def _total(token_lp: torch.Tensor, lengths: torch.Tensor, normalize: bool) -> torch.Tensor:
    return token_lp / lengths.clamp(min=1) if normalize else token_lp


def _checked(prompt: PromptBatch, continuations: list[list[list[int]]]) -> int:
    """The number of continuations per prompt, after checking the batch's shape."""
    if len(continuations) != prompt.inputs_embeds.shape[0]:
        raise ValueError(
            f"{len(continuations)} lists of continuations for {prompt.inputs_embeds.shape[0]} prompts"
        )
    counts = {len(row) for row in continuations}
    if len(counts) != 1:
        raise ValueError(f"every prompt needs the same number of continuations, got {sorted(counts)}")
    if any(len(c) == 0 for row in continuations for c in row):
        raise ValueError("every continuation needs at least one token")
    return counts.pop()


def score_continuations(
    model: PreTrainedModel,
    prompt: PromptBatch,
    continuations: list[list[list[int]]],
    normalize: bool = True,
) -> torch.Tensor:
    """Log-likelihood ``(B, C)`` of each prompt's C continuations after it, reusing the batch's cache.

    ``continuations[b]`` are prompt b's token-id lists; ``normalize`` divides each sum by the continuation's
    length (token count).
    """
    n_cand = _checked(prompt, continuations)
    device, n_rows = prompt.attention_mask.device, len(continuations)
    # only the prompts' last position predicts (every title's first token): no (L, vocabulary) logits
    out = model(**prompt.model_inputs(), use_cache=True, logits_to_keep=1)
    lengths = torch.as_tensor([[len(c) for c in row] for row in continuations], device=device)  # (B, C)
    width = int(lengths.sum(dim=1).max())
    ids = torch.zeros(n_rows, width, dtype=torch.long, device=device)  # (B, S) packed, right-padded
    owner = torch.full((n_rows, width), -1, dtype=torch.long, device=device)  # its title; -1: padding
    offset = torch.zeros(n_rows, width, dtype=torch.long, device=device)  # its place within its title
    for row, titles in enumerate(continuations):
        n = int(lengths[row].sum())
        ids[row, :n] = torch.as_tensor([t for c in titles for t in c], device=device)
        owner[row, :n] = torch.repeat_interleave(torch.arange(n_cand, device=device), lengths[row])
        offset[row, :n] = torch.cat([torch.arange(k, device=device) for k in lengths[row].tolist()])
    # token j sees its own unpadded prompt and the tokens of its own title up to itself (padding sees padding)
    own = (owner[:, :, None] == owner[:, None, :]) & (offset[:, None, :] <= offset[:, :, None])  # (B, S, S)
    allowed = torch.cat([prompt.attention_mask.bool()[:, None, :].expand(-1, width, -1), own], dim=2)
    dtype = prompt.inputs_embeds.dtype
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    mask = mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]  # (B, 1, S, L+S), additive
    start = prompt.position_ids[:, -1:] + 1  # (B, 1): each prompt's next position
    later = model(
        input_ids=ids, attention_mask=mask, position_ids=start + offset, cache=out.cache
    ).logits.float()  # (B, S, V): position j predicts the token after j in its title
    # log p(token j+1 | ... j) at position j, without materialising a (B, S, V) log-softmax
    following = ids.roll(-1, dims=1)
    next_lp = later.gather(2, following[..., None])[..., 0] - later.logsumexp(dim=2)  # (B, S)
    first_lp = F.log_softmax(out.logits[:, -1].float(), dim=-1).gather(1, ids)  # (B, S)
    token_lp = torch.where(
        offset == 0, first_lp, next_lp.roll(1, dims=1)
    )  # a title's first token from the prompt, the rest from the token before it
    token_lp = token_lp.masked_fill(owner < 0, 0.0)
    slot = (torch.arange(n_rows, device=device)[:, None] * n_cand + owner.clamp(min=0)).flatten()
    totals = torch.zeros(n_rows * n_cand, device=device).index_add_(0, slot, token_lp.flatten())
    return _total(totals.view(n_rows, n_cand), lengths.float(), normalize)


def score_continuations_naive(
    model: PreTrainedModel,
    prompt: PromptBatch,
    continuations: list[list[list[int]]],
    normalize: bool = True,
) -> torch.Tensor:
    """The same scores ``(B, C)`` with one full forward pass per prompt and candidate, each prompt unpadded
    (the reference for tests and benchmarks)."""
    n_cand = _checked(prompt, continuations)
    embedding = model.get_input_embeddings()
    device = prompt.attention_mask.device
    scores = torch.zeros(len(continuations), n_cand, device=device)
    for row, titles in enumerate(continuations):
        real = prompt.attention_mask[row].bool()
        prompt_embeds = prompt.inputs_embeds[row, real][None]  # (1, L_b, H)
        for col, continuation in enumerate(titles):
            ids = torch.as_tensor([continuation], device=device)
            embeds = torch.cat([prompt_embeds, embedding(ids).to(prompt_embeds.dtype)], dim=1)
            logits = model(inputs_embeds=embeds).logits  # (1, L_b+T, V)
            # position t predicts token t+1: the title's tokens from the prompt's last position on
            lp = F.log_softmax(logits[0, prompt_embeds.shape[1] - 1 : -1].float(), dim=-1)  # (T, V)
            total = lp.gather(1, ids[0, :, None]).sum()
            scores[row, col] = _total(total, torch.tensor(float(len(continuation))), normalize)
    return scores
