"""Prompt assembly with soft tokens and prefix-cache scoring, on tiny random Llama and OPT models."""

from __future__ import annotations

import pytest
import torch

from allmrec_pipeline.llm.prompt import (
    CANDIDATE,
    HISTORY,
    USER,
    PromptTemplate,
    embed_prompts,
    tokenize_prompt,
)
from allmrec_pipeline.llm.scoring import score_continuations, score_continuations_naive
from tests.llm.tiny import tiny_llm, tiny_tokenizer

TEMPLATE = PromptTemplate(
    f"{USER} is a user representation . This user has {{verb}} {{history}} in the previous . Recommend one next "
    f"{{noun}} for this user to {{verb_present}} next from the following {{noun}} title set , {{candidates}} . "
    "The recommendation is"
)
WORDING = {"noun": "item", "verb": "bought", "verb_present": "buy"}


def _prompt(tokenizer, n_history=2, n_candidates=3):
    text = TEMPLATE.render(
        WORDING,
        ["red lipstick", "blue shampoo"][:n_history],
        ["soap", "hair oil", "nail polish gel"][:n_candidates],
    )
    return text, tokenize_prompt(tokenizer, text)


def test_rendered_prompt_reads_as_the_template():
    text, _ = _prompt(tiny_tokenizer())
    assert text.startswith(
        f'{USER} is a user representation . This user has bought "red lipstick"{HISTORY}, "blue shampoo"{HISTORY} in'
    )
    assert text.endswith(f'"nail polish gel"{CANDIDATE} . The recommendation is')


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_each_soft_token_lands_exactly_at_its_placeholder(arch):
    tokenizer, model = tiny_tokenizer(), tiny_llm(arch)
    embedding = model.get_input_embeddings()
    _, short = _prompt(tokenizer, 1, 2)
    _, long = _prompt(tokenizer, 2, 3)
    soft = [
        {kind: torch.randn(len(p.positions[kind]), 16) for kind in ("user", "history", "candidate")}
        for p in (short, long)
    ]
    batch = embed_prompts(embedding, [short, long], soft)
    assert batch.inputs_embeds.shape == (2, len(long), 16)
    for row, prompt in enumerate((short, long)):
        offset = len(long) - len(prompt)
        assert batch.attention_mask[row, :offset].sum() == 0 and batch.attention_mask[row, offset:].all()
        for kind, positions in batch.positions[row].items():
            for k, position in enumerate(positions):
                torch.testing.assert_close(batch.inputs_embeds[row, position], soft[row][kind][k])
        text_positions = [i for i, token in enumerate(prompt.input_ids) if token >= 0]
        expected = embedding(torch.as_tensor([prompt.input_ids[i] for i in text_positions]))
        torch.testing.assert_close(batch.inputs_embeds[row, [offset + i for i in text_positions]], expected)
    # the text between placeholders is tokenized unchanged
    words = [tokenizer.convert_ids_to_tokens(t) for t in long.input_ids if t >= 0]
    assert words[:6] == ["<s>", "is", "a", "user", "representation", "."]
    out = model(**batch.model_inputs())
    assert torch.isfinite(out.logits).all()


def test_wrong_number_of_vectors_is_refused():
    tokenizer, model = tiny_tokenizer(), tiny_llm("llama")
    _, prompt = _prompt(tokenizer)
    soft = {"user": torch.randn(1, 16), "history": torch.randn(1, 16), "candidate": torch.randn(3, 16)}
    with pytest.raises(ValueError, match="has 2 history placeholder"):
        embed_prompts(model.get_input_embeddings(), [prompt], [soft])


@pytest.mark.parametrize("arch", ["llama", "opt"])
@pytest.mark.parametrize("normalize", [True, False])
def test_prefix_cache_scoring_equals_full_prompt_scoring(arch, normalize):
    """A padded batch of two prompts of different lengths, each with its own titles of different lengths,
    scores as each prompt alone followed by each title alone."""
    tokenizer, model = tiny_tokenizer(), tiny_llm(arch)
    prompts = [_prompt(tokenizer)[1], _prompt(tokenizer, 1, 2)[1]]
    soft = [
        {kind: torch.randn(len(p.positions[kind]), 16) for kind in ("user", "history", "candidate")}
        for p in prompts
    ]
    batch = embed_prompts(model.get_input_embeddings(), prompts, soft)
    assert batch.attention_mask[1].sum() < batch.attention_mask[0].sum()  # the second row is padded
    titles = [
        ["soap", "hair oil </s>", "nail polish gel mask", "red"],
        ["red lipstick", "gel", "soap", "hair"],
    ]
    continuations = [[tokenizer(t, add_special_tokens=False)["input_ids"] for t in row] for row in titles]
    with torch.no_grad():
        cached = score_continuations(model, batch, continuations, normalize)
        naive = score_continuations_naive(model, batch, continuations, normalize)
        alone = score_continuations(
            model,
            embed_prompts(model.get_input_embeddings(), prompts[1:], soft[1:]),
            continuations[1:],
            normalize,
        )
    assert cached.shape == (2, 4)
    torch.testing.assert_close(cached, naive, atol=1e-4, rtol=0)
    torch.testing.assert_close(alone[0], cached[1], atol=1e-4, rtol=0)  # padding changes nothing


def test_scoring_refuses_ragged_candidate_lists():
    tokenizer, model = tiny_tokenizer(), tiny_llm("llama")
    _, prompt = _prompt(tokenizer)
    soft = {kind: torch.randn(len(prompt.positions[kind]), 16) for kind in ("user", "history", "candidate")}
    batch = embed_prompts(model.get_input_embeddings(), [prompt, prompt], [soft, soft])
    with pytest.raises(ValueError, match="same number of continuations, got \\[1, 2\\]"):
        score_continuations(model, batch, [[[5]], [[5], [6]]])
    with pytest.raises(ValueError, match="1 lists of continuations for 2 prompts"):
        score_continuations(model, batch, [[[5]]])


def test_the_piece_cache_gives_the_same_ids_and_remembers_each_piece():
    text, plain = _prompt(tiny_tokenizer())
    cache: dict[str, list[int]] = {}
    first = tokenize_prompt(tiny_tokenizer(), text, cache=cache)
    assert (first.input_ids, first.positions) == (plain.input_ids, plain.positions)
    assert cache and all(isinstance(ids, list) for ids in cache.values())
    pieces = dict(cache)
    again = tokenize_prompt(tiny_tokenizer(), text, cache=cache)  # every piece from the cache now
    assert (again.input_ids, again.positions) == (plain.input_ids, plain.positions) and cache == pieces
