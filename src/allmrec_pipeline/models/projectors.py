"""Stage-2 projectors (A-LLMRec §4.2): CF vectors to the LLM's token-embedding space.

As in the authors' code: ``Linear → LayerNorm → LeakyReLU → Linear`` with Xavier-normal weights.
NOTE: optionally (``target_norm``) every output row is rescaled to a fixed L2 norm, typically the LLM's mean
token-embedding norm: freshly initialised projectors emit vectors about three times longer than SmolLM2's
token embeddings, which the frozen LLM then reads as outliers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Projector(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, target_norm: float | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.LeakyReLU(), nn.Linear(out_dim, out_dim)
        )
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_normal_(layer.weight)
                nn.init.zeros_(layer.bias)
        self.target_norm = target_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in_dim) -> (..., out_dim)
        out = self.net(x)
        if self.target_norm is not None:
            out = out * (self.target_norm / out.norm(dim=-1, keepdim=True).clamp(min=1e-6))
        return out


class CandidateHead(nn.Module):
    """The ``embedding_head`` objective's scorer: the last prompt position's hidden state (query) against the
    hidden states at each candidate's soft token (keys), through two small linear maps (one, when tied)."""

    def __init__(self, hidden: int, dim: int = 128, tied: bool = False) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, dim)
        # tied: keys go through the query map too, so an untrained head already scores by similarity in one
        # space (a positive semi-definite form) instead of a random bilinear one
        self.key = None if tied else nn.Linear(hidden, dim)
        self.scale = dim**-0.5

    def forward(self, last: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, C)`` from ``last`` ``(B, H)`` and ``candidates`` ``(B, C, H)``."""
        key = self.query if self.key is None else self.key
        return torch.einsum("bd,bcd->bc", self.query(last), key(candidates)) * self.scale


class Padded:
    """Padded token vectors ``(N, ..., T, H)`` with their mask ``(N, ..., T)``; rows index and concatenate like a
    tensor's, so cached features of both kinds go through the same fitting code."""

    def __init__(self, values: torch.Tensor, mask: torch.Tensor) -> None:
        if values.shape[:-1] != mask.shape:
            raise ValueError(f"values {tuple(values.shape)} do not match mask {tuple(mask.shape)}")
        self.values, self.mask = values, mask

    def __getitem__(self, rows) -> Padded:
        return Padded(self.values[rows], self.mask[rows])

    def __len__(self) -> int:
        return len(self.mask)

    @property
    def shape(self) -> torch.Size:
        return self.mask.shape

    @property
    def device(self) -> torch.device:
        return self.mask.device

    def flat(self) -> Padded:
        """The last two item dimensions as one: ``(N, A, T, H)`` to ``(N, A·T, H)``."""
        return Padded(self.values.flatten(-3, -2), self.mask.flatten(-2, -1))

    def means(self) -> torch.Tensor:
        """The mean over each row's kept tokens ``(N, ..., H)`` (0 where none is kept)."""
        kept = self.mask.to(self.values.dtype)
        return (self.values * kept[..., None]).sum(-2) / kept.sum(-1, keepdim=True).clamp_min(1)

    @staticmethod
    def cat(parts: list[Padded]) -> Padded:
        return Padded(torch.cat([p.values for p in parts]), torch.cat([p.mask for p in parts]))


def cat_features(parts: list) -> torch.Tensor | Padded:
    """Concatenate cached head features along rows: tensors or ``Padded``."""
    return Padded.cat(parts) if isinstance(parts[0], Padded) else torch.cat(parts)


class TokenMatchHead(nn.Module):
    """A late-interaction reader of titles (ColBERT's MaxSim): each candidate title token is matched with its
    most similar history title token through two small linear maps (one, when tied), and a candidate scores the
    mean of its tokens' best matches. A candidate that shares words with the history scores high, as the
    word-overlap floor does, but the match is learned and read from the LLM's contextual hidden states."""

    def __init__(self, hidden: int, dim: int = 128, tied: bool = False, init: str = "random") -> None:
        super().__init__()
        if init not in ("random", "identity"):
            raise ValueError(f"unknown head init {init!r}: use random or identity")
        # identity: one map (tied), the identity at first, and the match a cosine similarity: before any training
        # the head matches each candidate token with the history token whose hidden state points the same way
        self.cosine = init == "identity"
        dim = hidden if self.cosine else dim
        self.query = nn.Linear(hidden, dim)
        self.key = None if tied or self.cosine else nn.Linear(hidden, dim)
        self.scale = 1.0 if self.cosine else dim**-0.5
        if self.cosine:
            with torch.no_grad():
                self.query.weight.copy_(torch.eye(hidden))
                self.query.bias.zero_()

    def forward(self, history: Padded, candidates: Padded) -> torch.Tensor:
        """Scores ``(B, C)`` from the history tokens ``(B, Th, H)`` and the candidates' ``(B, C, Tc, H)``; a row
        without history tokens, and a candidate without tokens, score 0."""
        key = self.query if self.key is None else self.key
        q, k = self.query(history.values), key(candidates.values)  # (B, Th, d), (B, C, Tc, d)
        if self.cosine:
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        sim = torch.einsum("bsd,bctd->bcts", q, k) * self.scale
        sim = sim.masked_fill(~history.mask[:, None, None, :], float("-inf"))
        best = sim.amax(-1)  # (B, C, Tc)
        best = torch.where(history.mask.any(-1)[:, None, None], best, torch.zeros_like(best))
        kept = candidates.mask.to(best.dtype)
        return (best * kept).sum(-1) / kept.sum(-1).clamp_min(1)
