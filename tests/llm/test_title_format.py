"""The rank-mode answer is scored in the tokens the prompt writes a candidate in (byte-level BPE)."""

from __future__ import annotations

import functools

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from allmrec_pipeline.llm.prompt import PromptTemplate, tokenize_prompt
from allmrec_pipeline.llm.recommender import Sample, SoftPromptRecommender
from tests.configs import stage2_config

TEMPLATE = PromptTemplate(
    "{user}This user has {verb} {history} in the previous. Recommend one next {noun} for this user to "
    "{verb_present} next from the following {noun} title set, {candidates}. The recommendation is"
)
WORDING = {"noun": "item", "verb": "bought", "verb_present": "buy"}
TITLES = ["", "Argan Oil Hair Mask", "Shampoo for Curly Hair", "Red Nail Polish", "Oil Cleanser"]


@functools.cache
def _bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A small byte-level BPE (GPT-2 / SmolLM2 style: a leading space is part of the next word's token)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [TEMPLATE.text, *TITLES, *(f' "{t}", {t} "{t}"' for t in TITLES)] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>")


def _recommender(title_format: str, tokenizer, item_tokens: str = "none") -> SoftPromptRecommender:
    torch.manual_seed(0)
    llm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    ).eval()
    table = torch.randn(len(TITLES), 4)
    config = stage2_config(objective="lm", use_user=False, item_tokens=item_tokens, title_format=title_format)
    return SoftPromptRecommender(llm, tokenizer, TEMPLATE, WORDING, table, TITLES, 3, config)


def _contains(haystack: list[int], needle: list[int]) -> bool:
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


@pytest.mark.parametrize("item_tokens", ["none", "joint"])
def test_quoted_answers_are_tokenized_as_the_prompt_writes_the_candidates(item_tokens):
    tokenizer = _bpe_tokenizer()
    quoted = _recommender("quoted", tokenizer, item_tokens)
    plain = _recommender("plain", tokenizer, item_tokens)
    sample = Sample(torch.zeros(3), [1], [1, 2, 3, 4], 0)
    prompt_ids = tokenize_prompt(tokenizer, quoted.render(sample)).input_ids
    eos = tokenizer.eos_token_id
    closing = tokenizer('"', add_special_tokens=False)["input_ids"]
    for item in (1, 2, 3, 4):
        answer = quoted.answer_ids[item]
        assert answer[-1] == eos and answer[-1 - len(closing) : -1] == closing
        # ' "Title' in the prompt's tokens; with a soft token after each candidate its closing quote too
        # (without, BPE merges the quote with the comma that follows it)
        in_prompt = answer[:-1] if item_tokens == "joint" else answer[: -1 - len(closing)]
        assert _contains(prompt_ids, in_prompt), TITLES[item]
        assert tokenizer.decode(answer[:-1]) == f' "{TITLES[item]}"'
        # the plain answer ' Title' starts with another token than the prompt's 'Title': the deciding one
        plain_first = plain.answer_ids[item][0]
        title_in_prompt = tokenizer(TITLES[item], add_special_tokens=False)["input_ids"]
        assert _contains(prompt_ids, title_in_prompt)
        assert plain_first != title_in_prompt[0]
        assert tokenizer.decode(plain.answer_ids[item][:-1]) == f" {TITLES[item]}"


@pytest.mark.parametrize("normalize", [True, False])
def test_title_scores_use_the_configured_answer_and_length_rule(normalize):
    tokenizer = _bpe_tokenizer()
    model = _recommender("quoted", tokenizer)
    model.config.length_normalize = normalize
    sample = Sample(torch.zeros(3), [1], [1, 2, 3, 4], 0)
    scores = model.title_scores([sample])[0]
    with torch.no_grad():
        for col, item in enumerate(sample.candidates):
            ids = tokenize_prompt(tokenizer, model.render(sample)).input_ids + model.answer_ids[item]
            logits = model.llm(torch.tensor([ids])).logits[0].float()
            n = len(model.answer_ids[item])
            lp = (
                torch.log_softmax(logits[-n - 1 : -1], dim=-1)
                .gather(1, torch.tensor(ids[-n:])[:, None])
                .sum()
            )
            expected = lp / n if normalize else lp
            assert scores[col].item() == pytest.approx(expected.item(), abs=1e-4)


def test_unknown_title_format_is_refused():
    with pytest.raises(ValueError, match="title_format"):
        _recommender("bare", _bpe_tokenizer())
