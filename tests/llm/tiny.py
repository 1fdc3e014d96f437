"""Tiny random causal LMs and a word-level tokenizer, built from configs (no download)."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM, PreTrainedTokenizerFast

WORDS = [
    "is",
    "a",
    "user",
    "representation",
    ".",
    "This",
    "user",
    "has",
    "bought",
    "in",
    "the",
    "previous",
    "Recommend",
    "one",
    "next",
    "item",
    "for",
    "this",
    "to",
    "buy",
    "from",
    "following",
    "title",
    "set",
    ",",
    "The",
    "recommendation",
    "lipstick",
    "red",
    "blue",
    "shampoo",
    "soap",
    "cream",
    "oil",
    "hair",
    "brush",
    "mask",
    '"',
    "gel",
    "nail",
    "polish",
]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "<s>", "</s>", *dict.fromkeys(WORDS)])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="[PAD]", unk_token="[UNK]"
    )


def tiny_llm(arch: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    if arch == "llama":
        config = LlamaConfig(
            vocab_size=99,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=256,
            initializer_range=0.3,
        )
        model = LlamaForCausalLM(config)
    elif arch == "opt":
        config = OPTConfig(
            vocab_size=99,
            hidden_size=16,
            ffn_dim=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            word_embed_proj_dim=16,
            max_position_embeddings=256,
            init_std=0.3,
        )
        model = OPTForCausalLM(config)
    else:
        raise ValueError(arch)
    return model.eval().requires_grad_(False)
