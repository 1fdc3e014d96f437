"""GRU4Rec: session-based recommendation with recurrent networks (Hidasi et al., ICLR 2016).

NOTE: trained here with the shared per-position loss of ``CFBackbone.loss`` (SASRec's sampled BCE, or CE),
not the original session-parallel mini-batches with BPR/TOP1; this is RecBole's variant. Left padding runs
through the GRU as zero vectors, the same way at training and inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import BackboneConfig, CFBackbone


@dataclass
class GRU4RecConfig(BackboneConfig):
    num_layers: int  # (int >= 1) stacked GRU layers


class GRU4Rec(CFBackbone):
    name = "gru4rec"
    config_class = GRU4RecConfig

    def __init__(self, n_items: int, config: GRU4RecConfig) -> None:
        super().__init__(n_items, config)
        d = config.hidden_size
        self.emb_dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(d, d, num_layers=config.num_layers, batch_first=True)
        self.out = nn.Linear(d, d)

    def sequence_features(
        self, history: torch.Tensor, item_table: torch.Tensor | None = None
    ) -> torch.Tensor:
        history = history[:, -self.config.max_seq_len :]
        states, _ = self.gru(self.emb_dropout(self.embed(history, item_table)))  # (B, T, d)
        return self.out(states)
