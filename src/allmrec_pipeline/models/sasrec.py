"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

Follows pmixer's PyTorch port, which A-LLMRec's authors use: scaled item embeddings plus learned positions,
pre-LayerNorm causal self-attention blocks with a point-wise feed-forward, a final LayerNorm, and padding
positions zeroed after every block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import BackboneConfig, CFBackbone


@dataclass
class SASRecConfig(BackboneConfig):
    num_blocks: int  # (int >= 1) self-attention blocks
    num_heads: int  # (int >= 1) attention heads per block


class _PointWiseFeedForward(nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, hidden),
            nn.Dropout(dropout),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class _CausalAttention(nn.Module):
    """Multi-head causal attention whose queries come from the normalised input and keys/values from the raw
    input (pmixer's block); ``scaled_dot_product_attention`` keeps it lean on CPUs."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden_size {hidden} is not divisible by num_heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.out = nn.Linear(hidden, hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        return x.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)  # (B, h, T, d/h)

    def forward(self, query: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        attended = F.scaled_dot_product_attention(
            self._split(self.query(query)),
            self._split(self.key(x)),
            self._split(self.value(x)),
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=True,
        )  # (B, h, T, d/h)
        return self.out(attended.transpose(1, 2).reshape(query.shape))


class SASRec(CFBackbone):
    name = "sasrec"
    config_class = SASRecConfig

    def __init__(self, n_items: int, config: SASRecConfig) -> None:
        super().__init__(n_items, config)
        d = config.hidden_size
        self.pos_emb = nn.Embedding(config.max_seq_len, d)
        self.emb_dropout = nn.Dropout(config.dropout)
        self.attn_norms = nn.ModuleList(nn.LayerNorm(d, eps=1e-8) for _ in range(config.num_blocks))
        self.attns = nn.ModuleList(
            _CausalAttention(d, config.num_heads, config.dropout) for _ in range(config.num_blocks)
        )
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(d, eps=1e-8) for _ in range(config.num_blocks))
        self.ffns = nn.ModuleList(_PointWiseFeedForward(d, config.dropout) for _ in range(config.num_blocks))
        self.last_norm = nn.LayerNorm(d, eps=1e-8)
        # pmixer's initialisation: Xavier-normal on every matrix; it converges markedly faster than the default.
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_normal_(param)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def sequence_features(
        self, history: torch.Tensor, item_table: torch.Tensor | None = None
    ) -> torch.Tensor:
        history = history[:, -self.config.max_seq_len :]
        _, length = history.shape
        keep = (history != 0).unsqueeze(-1)  # (B, T, 1)
        positions = torch.arange(length, device=history.device)
        x = self.embed(history, item_table) * self.hidden_size**0.5 + self.pos_emb(positions)  # (B, T, d)
        x = self.emb_dropout(x) * keep
        for attn_norm, attn, ffn_norm, ffn in zip(
            self.attn_norms, self.attns, self.ffn_norms, self.ffns, strict=True
        ):
            query = attn_norm(x)
            attended = attn(query, x)
            x = ffn(ffn_norm(query + attended)) * keep
        return self.last_norm(x)  # (B, T, d)
