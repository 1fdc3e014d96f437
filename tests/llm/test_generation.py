"""Generation-to-candidate mapping: exact, fuzzy, invalid and ambiguous answers."""

from __future__ import annotations

from allmrec_pipeline.llm.generation import map_to_candidate, normalize_title

TITLES = [
    "Shampoo and Conditioner Set",
    "Shampoo",
    "Argan Oil Hair Mask, 8 oz",
    "Nail Polish - Red",
    "Nail Polish, Red",
]


def test_normalized_exact_match():
    mapping = map_to_candidate(' "argan oil hair mask 8 OZ".\nMore text', TITLES)
    assert (mapping.index, mapping.reason) == (2, "exact")


def test_a_substring_is_not_a_hit():
    mapping = map_to_candidate("Shampoo", TITLES)
    assert (mapping.index, mapping.reason) == (
        1,
        "exact",
    )  # the exact title, not the longer one containing it
    assert map_to_candidate("Conditioner", TITLES).index is None


def test_fuzzy_match_above_threshold():
    mapping = map_to_candidate("Argan Oil Hair Mask 8oz", TITLES, threshold=0.8)
    assert (mapping.index, mapping.reason) == (2, "fuzzy") and mapping.similarity >= 0.8


def test_below_threshold_is_invalid():
    mapping = map_to_candidate("A completely different product", TITLES)
    assert (mapping.index, mapping.reason) == (None, "no_match")


def test_ambiguous_answers_are_invalid():
    # Both "Nail Polish - Red" and "Nail Polish, Red" normalise to "nail polish red".
    mapping = map_to_candidate("nail polish red", TITLES)
    assert (mapping.index, mapping.reason) == (None, "ambiguous")


def test_empty_generation_is_invalid():
    assert map_to_candidate("   \n", TITLES).reason == "empty"


def test_normalize_title_folds_case_accents_and_punctuation():
    assert normalize_title("  Crème  BRÛLÉE -- Lip-Balm! ") == "creme brulee lip balm"


def test_lenient_hit_is_the_original_codes_substring_rule():
    from allmrec_pipeline.llm.generation import lenient_hit

    assert lenient_hit(
        '"Argan Oil Hair Mask" and "Red Nail Polish"', "argan oil hair mask"
    )  # names two: a hit
    assert lenient_hit("Shampoo and Conditioner Set", "Shampoo")  # our strict rule says no; the paper's yes
    assert not lenient_hit("Shampoo", "Shampoo and Conditioner Set")
    assert not lenient_hit("anything", "  ")  # an empty title never hits
