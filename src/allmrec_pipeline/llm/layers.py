"""Run a Hugging Face decoder through its first k layers only (then its final norm), for any architecture that
keeps its decoder layers in one ``nn.ModuleList`` (Llama, Qwen, Mistral, OPT, GPT-2, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn
from transformers import PreTrainedModel


def decoder_layers(model: PreTrainedModel) -> tuple[nn.Module, str, nn.ModuleList]:
    """The module holding the decoder layers, its attribute name, and the layers: the one ``nn.ModuleList``
    as long as the config's ``num_hidden_layers``."""
    n_layers = model.config.get_text_config().num_hidden_layers
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ModuleList) and len(child) == n_layers:
                return parent, name, child
    raise ValueError(f"{type(model).__name__} has no module list of its {n_layers} decoder layers")


def checked_layer_count(model: PreTrainedModel, n_layers: int) -> tuple[nn.Module, str, nn.ModuleList]:
    """``decoder_layers``, after checking that ``n_layers`` is between 1 and the model's layer count."""
    parent, name, layers = decoder_layers(model)
    if not 1 <= n_layers <= len(layers):
        raise ValueError(f"head_layer must be between 1 and the LLM's {len(layers)} layers, not {n_layers}")
    return parent, name, layers


@contextmanager
def first_layers(model: PreTrainedModel, n_layers: int | None) -> Iterator[None]:
    """Inside the block, ``model`` runs only its first ``n_layers`` decoder layers (``None``: all of them).

    The layers are the model's own modules (a shorter list of them is swapped in and the full one restored on
    exit), so nothing is copied and the frozen weights stay shared; the skipped layers cost nothing, forward
    or backward.
    """
    if n_layers is None:
        yield
        return
    parent, name, layers = checked_layer_count(model, n_layers)
    setattr(parent, name, layers[:n_layers])
    try:
        yield
    finally:
        setattr(parent, name, layers)
