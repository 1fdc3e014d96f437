"""The language-generation task of A-LLMRec §5.4.4: asked for a user's favourite category in words, does the model
still answer in language, and rightly?

A user's labels come from the ``category`` column of the items (labels joined by ``|``). The truth is the most
frequent label among the user's held-out items (every label tied for the top counts). An answer is the first line
of a greedy generation (``generation.answer_text``); it is scored two ways against the dataset's label set:

- ``exact``: the answer is one of the true labels, character for character;
- ``normalised``: after ``normalize_title`` (case, accents, punctuation), the answer is a label or names exactly
  one label as whole words ("I think Comedy"), and that label is a true one. An answer naming two labels names
  none: a list of genres is not a choice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from allmrec_pipeline.contracts import CATEGORY_SEPARATOR

from .generation import answer_text, generate, normalize_title
from .recommender import Sample, SoftPromptRecommender


def labels_of(category: object) -> list[str]:
    """The labels of one ``items.category`` cell (none for an empty or null cell)."""
    if not isinstance(category, str) or not category:
        return []
    return [label for label in category.split(CATEGORY_SEPARATOR) if label]


def favourite_labels(items: Sequence[int], labels_by_item: Sequence[list[str]]) -> list[str]:
    """The most frequent labels over ``items`` (each item counts once per label), every tied one, in first-seen
    order; none when no item has a label."""
    counts = label_counts(items, labels_by_item)
    if not counts:
        return []
    top = max(counts.values())
    return [label for label, count in counts.items() if count == top]


def label_counts(items: Sequence[int], labels_by_item: Sequence[list[str]]) -> Counter:
    """How many of ``items`` carry each label, in first-seen order."""
    return Counter(label for item in items for label in labels_by_item[item])


@dataclass(frozen=True)
class LabelMatch:
    label: str | None  # the label the answer names, None when it names none or several
    reason: str  # exact | normalised | named | ambiguous | no_match | empty


def match_label(generation: str, labels: Sequence[str]) -> LabelMatch:
    """The one label of ``labels`` a generation names (see the module docstring)."""
    raw = answer_text(generation)
    if not raw:
        return LabelMatch(None, "empty")
    if raw in labels:
        return LabelMatch(raw, "exact")
    answer = normalize_title(raw)
    normalised = {normalize_title(label): label for label in labels}
    if answer in normalised:
        return LabelMatch(normalised[answer], "normalised")
    named = [label for key, label in normalised.items() if key and f" {key} " in f" {answer} "]
    if len(named) == 1:
        return LabelMatch(named[0], "named")
    return LabelMatch(None, "ambiguous" if named else "no_match")


def question(template: str, labels: Sequence[str], label_noun: str = "category") -> str:
    """The preference prompt's text with the label set (``{labels}``) and what a label is called
    (``{label_noun}``) written in; braces in a label are kept literally (the text is formatted again with the
    wording and history)."""
    listed = ", ".join(labels).replace("{", "{{").replace("}", "}}")
    return template.replace("{labels}", listed).replace("{label_noun}", label_noun)


@torch.no_grad()
def generate_answers(
    recommender: SoftPromptRecommender,
    samples: list[Sample],
    text: str,
    batch_size: int,
    max_new_tokens: int,
    progress=None,
) -> list[str]:
    """Greedy generations of the preference prompt ``text`` for each sample, the model's own way: its soft tokens
    (user, history items) where it has them, its LLM (a LoRA copy for TALLRec)."""
    answers: list[str] = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        answers += generate(
            recommender.llm, recommender.tokenizer, recommender.prompts(batch, text=text), max_new_tokens
        )
        if progress is not None:
            progress.update(len(batch))
    return answers


def score_answers(generations: Sequence[str], truths: Sequence[Sequence[str]], labels: Sequence[str]) -> dict:
    """Per answer: the label it names, why, and whether it is right exactly and after normalisation."""
    matches = [match_label(g, labels) for g in generations]
    return {
        "answer": [answer_text(g) for g in generations],
        "label": [m.label for m in matches],
        "match": [m.reason for m in matches],
        "exact": np.asarray(
            [answer_text(g) in t for g, t in zip(generations, truths, strict=True)], dtype=float
        ),
        "normalised": np.asarray(
            [m.label is not None and m.label in t for m, t in zip(matches, truths, strict=True)], dtype=float
        ),
    }
