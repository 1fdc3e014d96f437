"""The language-generation task's pieces: the truth of a user, how an answer is matched to a label, and the
question asked the model's own way (its soft tokens where it has them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from allmrec_pipeline.llm.preferences import (
    favourite_labels,
    generate_answers,
    labels_of,
    match_label,
    question,
    score_answers,
)
from allmrec_pipeline.llm.recommender import Sample
from tests.llm.test_recommender import recommender

LABELS = ["Action", "Children's", "Comedy", "Film-Noir", "Sci-Fi"]
QUESTION = "{user}This user has {verb} {history} in the previous . Of {labels} the user likes"


def test_labels_of_a_category_cell():
    assert labels_of("Comedy|Romance") == ["Comedy", "Romance"]
    assert labels_of("") == [] and labels_of(None) == [] and labels_of(float("nan")) == []


def test_the_truth_is_every_label_tied_for_the_most_held_out_items():
    by_item = [[], ["Comedy", "Romance"], ["Comedy"], ["Drama"], []]
    assert favourite_labels([1, 2], by_item) == ["Comedy"]
    assert favourite_labels([1, 3], by_item) == ["Comedy", "Romance", "Drama"]  # all tied at one
    assert favourite_labels([4], by_item) == []  # no labelled item: no truth (the user is skipped)


@pytest.mark.parametrize(
    ("generation", "label", "reason"),
    [
        (" Comedy.\nAnd more", "Comedy", "exact"),  # the first line, the period dropped
        (' "Sci-Fi"', "Sci-Fi", "exact"),
        (" comedy", "Comedy", "normalised"),
        (" sci fi", "Sci-Fi", "normalised"),
        (" childrens", None, "no_match"),  # normalised "children s": a different word sequence
        (" I think Film-Noir movies", "Film-Noir", "named"),
        (" Action and Comedy", None, "ambiguous"),  # two labels name none
        (" Actionable", None, "no_match"),  # whole words only: never a substring test
        ("   ", None, "empty"),
    ],
)
def test_an_answer_names_one_label_or_none(generation, label, reason):
    match = match_label(generation, LABELS)
    assert (match.label, match.reason) == (label, reason)


def test_exact_and_normalised_scores():
    scored = score_answers(
        [" Comedy", " comedy", " I like Action", " Drama"], [["Comedy"]] * 3 + [["Drama"]], LABELS
    )
    np.testing.assert_array_equal(scored["exact"], [1, 0, 0, 1])  # "Drama" is the truth, not a listed label
    np.testing.assert_array_equal(scored["normalised"], [1, 1, 0, 0])
    assert scored["label"] == ["Comedy", "Comedy", "Action", None]


def test_the_question_lists_the_labels_and_keeps_their_braces():
    text = question("Of {labels}, which?", ["A {x}", "B"])
    assert text == "Of A {{x}}, B, which?" and text.format() == "Of A {x}, B, which?"


def _samples(n: int) -> list[Sample]:
    generator = torch.Generator().manual_seed(3)
    return [
        Sample(
            torch.randn(5, generator=generator),
            [1 + (i % 8), 1 + ((i + 2) % 8), 1 + ((i + 5) % 8)][: 1 + i % 3],
            [],
        )
        for i in range(n)
    ]


def test_a_llmrec_asks_with_its_soft_tokens_and_titles_only_models_without():
    text = question(QUESTION, LABELS)
    soft = recommender("embedding_head").eval()
    batch = soft.prompts(_samples(2), text=text)
    assert [len(p["user"]) for p in batch.positions] == [1, 1]
    assert [len(p["history"]) for p in batch.positions] == [1, 2] and not any(
        p["candidate"] for p in batch.positions
    )
    plain = recommender("listwise", use_user=False, item_tokens="none").eval()
    assert "red lipstick" in plain.render(_samples(1)[0], text) and "[" not in plain.render(
        _samples(1)[0], text
    )
    assert not any(plain.prompts(_samples(2), text=text).positions[0].values())


@pytest.mark.parametrize("config", [{}, {"use_user": False, "item_tokens": "none"}])
def test_batched_answers_are_the_one_at_a_time_answers(config):
    """Left padding changes nothing: a batch of prompts of different lengths answers as each prompt alone."""
    model = recommender("listwise", **config).eval()
    text = question(QUESTION, LABELS)
    samples = _samples(5)
    batched = generate_answers(model, samples, text, batch_size=5, max_new_tokens=4)
    alone = [generate_answers(model, [s], text, batch_size=1, max_new_tokens=4)[0] for s in samples]
    assert batched == alone and all(isinstance(a, str) for a in batched)
