"""A-LLMRec stage 1 (Kim et al., KDD 2024, §4.1): align the frozen CF item embeddings with item texts.

Four small networks, as in the authors' ``two_layer_mlp``: an encoder ``Linear(d_in, d') → sigmoid`` and a
decoder ``Linear(d', d_in)``, once for CF item embeddings (d) and once for SBERT text embeddings (d_sbert).

    e_i = f_I^enc(E_i)              q_i = f_T^enc(SBERT(text_i))
    L = L_matching + α·L_item-recon + β·L_text-recon + L_rec
    L_matching   = MSE(e_i, q_i)
    L_item-recon = MSE(f_I^dec(e_i), E_i)
    L_text-recon = MSE(f_T^dec(q_i), SBERT(text_i))
    L_rec        = BCE(s(x_u, f_I^dec(e_pos)), 1) + BCE(s(x_u, f_I^dec(e_neg)), 0)

Every term is summed over the positive and the negative item, as the authors' code does.
NOTE: ``s`` is the backbone's own scoring function (a dot product for SASRec, GRU4Rec and NextItNet; NeuMF
for NCF), where the authors' code takes the mean of the element-wise product (the dot product over d).
NOTE: the text reconstruction target is detached, as in the authors' code (``pos_text_embedding.data``).
NOTE (our addition, ``standardize_inputs``): both encoders read per-dimension standardised inputs, and the item
decoder reconstructs the standardised ``E_i`` (mapped back to the backbone's scale for ``L_rec`` and for
stand-in embeddings). CF tables come at backbone-specific scales: SASRec's item rows have a per-dimension std
near 0.05, and MiniLM's unit-norm sentence vectors near 0.05 too, which leaves ``sigmoid(W·x)`` almost the
same for every item, so the matching loss wins and ``e`` collapses (the ``e_std`` diagnostic). With the
statistics at their identity values (``standardize_inputs: false``) the networks are exactly the authors'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

LOSS_TERMS = ("matching", "item_recon", "text_recon", "rec")


@dataclass
class AlignmentConfig:
    """Stage 1's networks and losses; no field has a default: the values come from ``stage1.alignment``."""

    latent_dim: int  # (int) d': the joint space of e_i and q_i
    alpha: float  # (float) weight of the item reconstruction loss
    beta: float  # (float) weight of the text reconstruction loss (the paper: 0.2 for Beauty and Toys)
    use_matching: bool  # (bool) ablation switch: the matching term
    use_item_recon: bool  # (bool) ablation switch: the item reconstruction term
    use_text_recon: bool  # (bool) ablation switch: the text reconstruction term
    use_rec: bool  # (bool) ablation switch: the recommendation term
    standardize_inputs: bool  # (bool) standardise E_i and SBERT vectors per dimension before the encoders (see the NOTE above)

    def to_dict(self) -> dict:
        return asdict(self)


class AutoEncoder(nn.Module):
    """``encode: Linear → sigmoid`` to d', ``decode: Linear`` back (the authors' ``two_layer_mlp``)."""

    def __init__(self, in_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.encoder = nn.Linear(in_dim, latent_dim)
        self.decoder = nn.Linear(latent_dim, in_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class CollaborativeTextAlignment(nn.Module):
    """The item autoencoder ``f_I`` (d ↔ d') and the text autoencoder ``f_T`` (d_sbert ↔ d')."""

    def __init__(self, cf_dim: int, text_dim: int, config: AlignmentConfig) -> None:
        super().__init__()
        self.config = config
        self.cf_dim, self.text_dim = cf_dim, text_dim
        self.item = AutoEncoder(cf_dim, config.latent_dim)
        self.text = AutoEncoder(text_dim, config.latent_dim)
        # Input statistics, saved with the weights; identity until fit_input_scales() sets them.
        self.register_buffer("cf_mean", torch.zeros(cf_dim))
        self.register_buffer("cf_scale", torch.ones(cf_dim))
        self.register_buffer("text_mean", torch.zeros(text_dim))
        self.register_buffer("text_scale", torch.ones(text_dim))

    @torch.no_grad()
    def fit_input_scales(self, item_emb: torch.Tensor, text_emb: torch.Tensor) -> None:
        """Per-dimension mean and std of the frozen CF item rows ``(N, d)`` and of sample SBERT vectors
        ``(S, d_sbert)``; a no-op unless ``standardize_inputs``.

        A scale never falls below a tenth of the median dimension's: all-MiniLM-L6-v2 has three (near-)constant
        output dimensions (std 1e-33 to 4e-9), and dividing by that std would blow up by a millionfold whatever a
        fine-tuned SBERT moves them by (the text reconstruction loss of a full epoch averaged 459 that way).
        """
        if not self.config.standardize_inputs:
            return
        for prefix, values in (("cf", item_emb), ("text", text_emb)):
            std = values.std(dim=0)
            getattr(self, f"{prefix}_mean").copy_(values.mean(dim=0))
            getattr(self, f"{prefix}_scale").copy_(std.clamp(min=max(0.1 * float(std.median()), 1e-6)))

    def _cf_in(self, item_emb: torch.Tensor) -> torch.Tensor:
        return (item_emb - self.cf_mean) / self.cf_scale

    def _cf_out(self, standardized: torch.Tensor) -> torch.Tensor:
        return standardized * self.cf_scale + self.cf_mean

    def _text_in(self, text_emb: torch.Tensor) -> torch.Tensor:
        return (text_emb - self.text_mean) / self.text_scale

    def losses(
        self,
        user: torch.Tensor,
        item_emb: torch.Tensor,
        text_emb: torch.Tensor,
        labels: torch.Tensor,
        score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Every loss term (before the switches and weights) for ``K`` items per user.

        Args:
            user: ``(B, d)`` frozen CF user representations ``x_u``.
            item_emb: ``(B, K, d)`` frozen CF embeddings of each user's items (positive, negatives).
            text_emb: ``(B, K, d_sbert)`` SBERT embeddings of the same items.
            labels: ``(B, K)`` 1 for the positive, 0 for negatives.
            score: The backbone's ``score_vectors(user (B, d), items (B, K, d)) -> (B, K)``.
        """
        item_in, text_in = self._cf_in(item_emb), self._text_in(text_emb)
        e = self.item.encode(item_in)  # (B, K, d')
        q = self.text.encode(text_in)  # (B, K, d')
        item_recon = self.item.decode(e)  # (B, K, d), standardised like item_in
        k = item_emb.shape[1]

        # Sum over the K items of per-item means, like the authors' pos + neg MSE terms.
        def per_item_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return k * F.mse_loss(a, b)

        logits = score(user, self._cf_out(item_recon))  # (B, K), at the backbone's scale
        return {
            "matching": per_item_mse(e, q),
            "item_recon": per_item_mse(item_recon, item_in),
            "text_recon": per_item_mse(self.text.decode(q), text_in.detach()),
            "rec": k * F.binary_cross_entropy_with_logits(logits, labels.float()),
        }

    def total_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """``L = L_matching + α·L_item-recon + β·L_text-recon + L_rec`` with the switched-off terms removed."""
        c = self.config
        weights = {
            "matching": 1.0 if c.use_matching else 0.0,
            "item_recon": c.alpha if c.use_item_recon else 0.0,
            "text_recon": c.beta if c.use_text_recon else 0.0,
            "rec": 1.0 if c.use_rec else 0.0,
        }
        active = [weights[name] * terms[name] for name in LOSS_TERMS if weights[name]]
        if not active:
            raise ValueError("every stage-1 loss term is switched off: nothing to train")
        return torch.stack(active).sum()

    @torch.no_grad()
    def joint_embeddings(self, item_emb: torch.Tensor) -> torch.Tensor:
        """``e_i = f_I^enc(E_i)`` ``(N, d')``."""
        return self.item.encode(self._cf_in(item_emb))

    @torch.no_grad()
    def text_embeddings(self, text_emb: torch.Tensor) -> torch.Tensor:
        """``q_i = f_T^enc(SBERT(text_i))`` ``(N, d')``."""
        return self.text.encode(self._text_in(text_emb))

    @torch.no_grad()
    def cf_stand_in(self, text_emb: torch.Tensor) -> torch.Tensor:
        """``f_I^dec(q_i)`` ``(N, d)``: a CF-space embedding for an item the backbone never saw (foreign items)."""
        return self._cf_out(self.item.decode(self.text_embeddings(text_emb)))
