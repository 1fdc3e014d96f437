"""The one interface every CF backbone exposes; stage 1 and stage 2 see nothing else.

Histories are left-padded ``(B, T)`` int64 tensors of item indexes, ``0`` being padding, so that the last
position is always the most recent item (pmixer's SASRec convention). Item indexes run ``1..N``.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class BackboneConfig:
    """Fields every backbone config shares. No field has a default: the values come from
    ``pretrain_cf.models.<backbone>`` (conf/base), or from a checkpoint's metadata."""

    hidden_size: int  # (int >= 1) d: item embedding and user representation size
    dropout: float  # (float in [0, 1)) dropout on embeddings and hidden layers
    max_seq_len: int  # (int >= 1) histories are truncated from the left to this many items

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CFBackbone(nn.Module, abc.ABC):
    """A sequential CF model: item embeddings ``(N+1, d)`` with row 0 as padding, a user representation from a
    history, candidate scores and a training loss."""

    name: ClassVar[str]
    config_class: ClassVar[type[BackboneConfig]]

    def __init__(self, n_items: int, config: BackboneConfig) -> None:
        super().__init__()
        if n_items < 1:
            raise ValueError(f"n_items must be positive, got {n_items}")
        self.n_items = n_items
        self.config = config
        self.item_emb = nn.Embedding(n_items + 1, config.hidden_size, padding_idx=0)

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def item_embeddings(self) -> torch.Tensor:
        """The item embedding table ``(N+1, d)``; row 0 is padding (all zeros)."""
        return self.item_emb.weight

    @abc.abstractmethod
    def sequence_features(
        self, history: torch.Tensor, item_table: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Causal per-position hidden states ``(B, T, d)`` of a left-padded history ``(B, T)``.

        Position ``t`` sees only items ``<= t``. Shared by training (every position) and inference (the last).
        ``item_table`` ``(M+1, d)`` replaces the model's own item embeddings, so that a history of items the
        model never saw (another dataset's, with stand-in embeddings) still gives a user representation.
        """

    def embed(self, history: torch.Tensor, item_table: torch.Tensor | None = None) -> torch.Tensor:
        """Item vectors ``(B, T, d)`` of a history, from the model's table or a given one (row 0 = padding)."""
        if item_table is None:
            return self.item_emb(history)
        if item_table.shape[1] != self.hidden_size:
            raise ValueError(f"item_table has d={item_table.shape[1]}, the backbone d={self.hidden_size}")
        return F.embedding(history, item_table, padding_idx=0)

    def user_representation(
        self, history: torch.Tensor, item_table: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The user vector ``x_u`` ``(B, d)``: the features at the last (most recent) position."""
        return self.sequence_features(history, item_table)[:, -1, :]

    def score_vectors(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores ``(..., C)`` of item vectors ``(..., C, d)`` for user vectors ``(..., d)``: a dot product
        unless the backbone defines its own interaction function (NCF)."""
        return torch.einsum("...d,...cd->...c", user, items)

    def score(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, C)`` of candidate items ``(B, C)``; padding candidates (index 0) score ``-inf``."""
        user = self.user_representation(history)  # (B, d)
        scores = self.score_vectors(user, self.item_emb(candidates))  # (B, C)
        return scores.masked_fill(candidates == 0, float("-inf"))

    def score_every_item(self, user: torch.Tensor) -> torch.Tensor:
        """Scores ``(M, N+1)`` of every item for user vectors ``(M, d)``; column 0 (padding) is ``-inf``."""
        scores = user @ self.item_emb.weight.T  # (M, N+1)
        scores[:, 0] = float("-inf")
        return scores

    def score_all(self, history: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, N+1)`` of every item, for full-ranking evaluation; column 0 (padding) is ``-inf``."""
        return self.score_every_item(self.user_representation(history))

    def loss(
        self,
        history: torch.Tensor,
        positives: torch.Tensor,
        negatives: torch.Tensor | None,
        kind: str = "bce",
    ) -> torch.Tensor:
        """Next-item loss at every non-padding position.

        Args:
            history: ``(B, T)`` inputs.
            positives: ``(B, T)`` the next item at each position (0 where there is none).
            negatives: ``(B, T)`` one sampled negative per position (``bce`` only; ``ce`` takes ``None``).
            kind: ``bce`` (SASRec's sampled-negative binary cross-entropy) or ``ce`` (softmax over all items).
        """
        feats = self.sequence_features(history)  # (B, T, d)
        mask = positives != 0  # (B, T)
        if kind == "bce":
            pos_logits = self.score_vectors(feats, self.item_emb(positives).unsqueeze(-2)).squeeze(-1)
            neg_logits = self.score_vectors(feats, self.item_emb(negatives).unsqueeze(-2)).squeeze(-1)
            pos_loss = F.binary_cross_entropy_with_logits(
                pos_logits, torch.ones_like(pos_logits), reduction="none"
            )
            neg_loss = F.binary_cross_entropy_with_logits(
                neg_logits, torch.zeros_like(neg_logits), reduction="none"
            )
            return ((pos_loss + neg_loss) * mask).sum() / mask.sum().clamp(min=1)
        if kind == "ce":
            logits = self.score_every_item(feats[mask])  # (M, N+1)
            return F.cross_entropy(logits, positives[mask])
        raise ValueError(f"unknown loss kind {kind!r}: use 'bce' or 'ce'")
