"""NCF / NeuMF: neural collaborative filtering (He et al., WWW 2017).

NOTE: the original NCF learns one embedding per user id, which cannot represent a user unseen in training.
Stage 2 needs a user vector for held-out (cold) users, so here the user vector is computed from the history:
the mean of the history's item embeddings through an MLP (the FISM / item-based reading of NCF). At position
``t`` it is the running mean over items ``<= t``, so training stays causal. Scores are NeuMF's: a GMF term
``h·(u ⊙ e)`` plus an MLP over ``[u, e]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import BackboneConfig, CFBackbone


@dataclass
class NCFConfig(BackboneConfig):
    mlp_layers: list[int]  # (list[int >= 1]) widths of NeuMF's MLP tower
    score_chunk: int  # (int >= 1) items scored per chunk in full ranking and CE (bounds memory)


class NCF(CFBackbone):
    name = "ncf"
    config_class = NCFConfig

    def __init__(self, n_items: int, config: NCFConfig) -> None:
        super().__init__(n_items, config)
        d = config.hidden_size
        self.user_tower = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.emb_dropout = nn.Dropout(config.dropout)
        layers: list[nn.Module] = []
        width = 2 * d
        for out in config.mlp_layers:
            layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(config.dropout)]
            width = out
        self.mlp = nn.Sequential(*layers)
        self.gmf_weight = nn.Linear(d, 1, bias=False)
        self.mlp_weight = nn.Linear(width, 1)

    def sequence_features(
        self, history: torch.Tensor, item_table: torch.Tensor | None = None
    ) -> torch.Tensor:
        history = history[:, -self.config.max_seq_len :]
        emb = self.emb_dropout(self.embed(history, item_table))  # (B, T, d); padding rows are zero
        counts = (history != 0).cumsum(dim=1).clamp(min=1).unsqueeze(-1)  # (B, T, 1)
        return self.user_tower(emb.cumsum(dim=1) / counts)  # (B, T, d)

    def score_vectors(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        user = user.unsqueeze(-2).expand_as(items)  # (..., C, d)
        gmf = self.gmf_weight(user * items)  # (..., C, 1)
        mlp = self.mlp_weight(self.mlp(torch.cat([user, items], dim=-1)))  # (..., C, 1)
        return (gmf + mlp).squeeze(-1)

    def score_every_item(self, user: torch.Tensor) -> torch.Tensor:
        chunks = []
        for start in range(0, self.n_items + 1, self.config.score_chunk):
            items = self.item_emb.weight[start : start + self.config.score_chunk]  # (K, d)
            chunks.append(self.score_vectors(user, items.unsqueeze(0).expand(user.shape[0], -1, -1)))
        scores = torch.cat(chunks, dim=1)  # (M, N+1)
        scores[:, 0] = float("-inf")
        return scores
