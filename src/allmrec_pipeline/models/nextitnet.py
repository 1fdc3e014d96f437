"""NextItNet: a simple convolutional generative network for next-item recommendation (Yuan et al., WSDM 2019).

Residual blocks of two dilated causal 1-D convolutions, each followed by LayerNorm and ReLU; left padding
keeps every position causal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import BackboneConfig, CFBackbone


@dataclass
class NextItNetConfig(BackboneConfig):
    kernel_size: int  # (int >= 1) convolution width
    dilations: list[int]  # (list[int >= 1]) dilation of each block in a stack
    num_stacks: int  # (int >= 1) how many times the dilation list is repeated


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.left_pads = ((kernel_size - 1) * dilation, (kernel_size - 1) * dilation * 2)
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.norm1 = nn.LayerNorm(channels, eps=1e-8)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation * 2)
        self.norm2 = nn.LayerNorm(channels, eps=1e-8)
        self.dropout = nn.Dropout(dropout)

    def _causal_conv(self, conv: nn.Conv1d, x: torch.Tensor, pad: int) -> torch.Tensor:
        out = conv(F.pad(x.transpose(1, 2), (pad, 0)))  # (B, d, T)
        return out.transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d)
        h = F.relu(self.norm1(self._causal_conv(self.conv1, x, self.left_pads[0])))
        h = F.relu(self.norm2(self._causal_conv(self.conv2, self.dropout(h), self.left_pads[1])))
        return x + h


class NextItNet(CFBackbone):
    name = "nextitnet"
    config_class = NextItNetConfig

    def __init__(self, n_items: int, config: NextItNetConfig) -> None:
        super().__init__(n_items, config)
        self.emb_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.Sequential(
            *(
                _ResidualBlock(config.hidden_size, config.kernel_size, dilation, config.dropout)
                for _ in range(config.num_stacks)
                for dilation in config.dilations
            )
        )
        self.out = nn.Linear(config.hidden_size, config.hidden_size)

    def sequence_features(
        self, history: torch.Tensor, item_table: torch.Tensor | None = None
    ) -> torch.Tensor:
        history = history[:, -self.config.max_seq_len :]
        return self.out(self.blocks(self.emb_dropout(self.embed(history, item_table))))  # (B, T, d)
