"""Generate mode (paper-faithful): greedy decoding, then the text is mapped to exactly one candidate.

A normalised exact title match wins; otherwise the best fuzzy match at or above a threshold, if it is the
only best; otherwise the answer is invalid. Never a substring test: "Shampoo" is not a hit for
"Shampoo and Conditioner Set".

``lenient_hit`` is the original A-LLMRec code's rule, reported beside ours (labelled as such) so that our
figures can be set beside the paper's: a hit whenever the lower-cased generation *contains* the lower-cased
target title, whatever else it names.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .prompt import PromptBatch


def normalize_title(text: str) -> str:
    """Lower case, accents folded, punctuation to spaces, single spaces."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def answer_text(generation: str) -> str:
    """The answer part of a generation: its first line, without surrounding quotes or a trailing period."""
    line = generation.strip().splitlines()[0] if generation.strip() else ""
    return line.strip().strip('"“”').rstrip(".").strip().strip('"“”')


def lenient_hit(generation: str, target_title: str) -> bool:
    """The paper's code's hit: the lower-cased target title is a substring of the lower-cased generation."""
    target = target_title.strip().lower()
    return bool(target) and target in generation.lower()


@dataclass
class Mapping:
    index: int | None  # the chosen candidate's column, None when invalid
    reason: str  # exact | fuzzy | ambiguous | no_match | empty
    similarity: float


def map_to_candidate(generation: str, titles: list[str], threshold: float = 0.8) -> Mapping:
    """Map a generated answer to one candidate title (see the module docstring)."""
    answer = normalize_title(answer_text(generation))
    if not answer:
        return Mapping(None, "empty", 0.0)
    normalized = [normalize_title(t) for t in titles]
    exact = [i for i, t in enumerate(normalized) if t == answer]
    if len(exact) == 1:
        return Mapping(exact[0], "exact", 1.0)
    if len(exact) > 1:
        return Mapping(None, "ambiguous", 1.0)
    ratios = [difflib.SequenceMatcher(None, answer, t).ratio() for t in normalized]
    best = max(ratios)
    if best < threshold:
        return Mapping(None, "no_match", best)
    winners = [i for i, r in enumerate(ratios) if r == best]
    if len(winners) > 1:
        return Mapping(None, "ambiguous", best)
    return Mapping(winners[0], "fuzzy", best)


@torch.no_grad()
def generate(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch: PromptBatch, max_new_tokens: int
) -> list[str]:
    """Greedy continuations of a batch of embedded prompts."""
    out = model.generate(
        inputs_embeds=batch.inputs_embeds,
        attention_mask=batch.attention_mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )
    return tokenizer.batch_decode(out, skip_special_tokens=True)
