"""Stage-1 loss terms against hand-computed values, and the ablation switches."""

from __future__ import annotations

import math

import pytest
import torch

from allmrec_pipeline.models.alignment import LOSS_TERMS, CollaborativeTextAlignment
from tests.configs import alignment_config


def _fixed_alignment(**switches) -> CollaborativeTextAlignment:
    """Zero weights, chosen biases: e = sigmoid(0) = [.5, .5], f_I^dec(e) = [1, 0], q = [.75, .5], f_T^dec(q) = 0."""
    model = CollaborativeTextAlignment(2, 2, alignment_config(latent_dim=2, **switches))
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
        model.item.decoder.bias.copy_(torch.tensor([1.0, 0.0]))
        model.text.encoder.bias.copy_(torch.tensor([math.log(3.0), 0.0]))  # sigmoid(ln 3) = 0.75
    return model


def _terms(model):
    user = torch.tensor([[2.0, 1.0]])  # x_u
    item_emb = torch.tensor([[[1.0, 2.0], [3.0, 0.0]]])  # E_pos, E_neg
    text_emb = torch.tensor([[[1.0, 1.0], [0.0, 2.0]]])  # SBERT(pos), SBERT(neg)
    dot = lambda u, items: torch.einsum("bd,bkd->bk", u, items)  # noqa: E731
    return model.losses(user, item_emb, text_emb, torch.tensor([[1.0, 0.0]]), dot)


def test_loss_terms_match_hand_computed_values():
    terms = {name: value.item() for name, value in _terms(_fixed_alignment()).items()}
    # matching: per item mean((e - q)^2) = (0.25^2 + 0) / 2, for the positive and the negative
    assert terms["matching"] == pytest.approx(2 * 0.03125)
    # item recon: pos mean(([1,0]-[1,2])^2) = 2, neg mean(([1,0]-[3,0])^2) = 2
    assert terms["item_recon"] == pytest.approx(4.0)
    # text recon: pos mean(([0,0]-[1,1])^2) = 1, neg mean(([0,0]-[0,2])^2) = 2
    assert terms["text_recon"] == pytest.approx(3.0)
    # rec: both logits x_u . [1, 0] = 2; BCE(2, 1) + BCE(2, 0)
    assert terms["rec"] == pytest.approx(math.log1p(math.exp(-2)) + math.log1p(math.exp(2)))
    model = _fixed_alignment()
    total = model.total_loss(_terms(model)).item()
    assert total == pytest.approx(
        terms["matching"] + 0.5 * terms["item_recon"] + 0.5 * terms["text_recon"] + terms["rec"]
    )


@pytest.mark.parametrize("term", LOSS_TERMS)
def test_each_switch_removes_exactly_its_term(term):
    full_model = _fixed_alignment()
    terms = _terms(full_model)
    full = full_model.total_loss(terms).item()
    weight = {"matching": 1.0, "item_recon": 0.5, "text_recon": 0.5, "rec": 1.0}[term]
    ablated = _fixed_alignment(**{f"use_{term}": False})
    assert ablated.total_loss(_terms(ablated)).item() == pytest.approx(full - weight * terms[term].item())


def test_all_terms_off_is_refused():
    model = _fixed_alignment(use_matching=False, use_item_recon=False, use_text_recon=False, use_rec=False)
    with pytest.raises(ValueError, match="every stage-1 loss term is switched off"):
        model.total_loss(_terms(model))


def test_weights_alpha_and_beta_scale_their_terms():
    model = CollaborativeTextAlignment(2, 2, alignment_config(latent_dim=2, alpha=0.2, beta=0.0))
    terms = {name: torch.tensor(1.0) for name in LOSS_TERMS}
    assert model.total_loss(terms).item() == pytest.approx(1.0 + 0.2 + 0.0 + 1.0)


def test_standardized_inputs_use_the_fitted_statistics_and_decode_to_the_backbone_scale():
    torch.manual_seed(0)
    item_rows = 0.05 * torch.randn(200, 3) + 0.2  # a SASRec-like small-scale table
    text_rows = torch.randn(50, 4)
    model = CollaborativeTextAlignment(3, 4, alignment_config(latent_dim=2))
    before = model.joint_embeddings(item_rows)
    model.fit_input_scales(item_rows, text_rows)
    torch.testing.assert_close(model.cf_mean, item_rows.mean(0))
    torch.testing.assert_close(model.text_scale, text_rows.std(0))
    standardized = (item_rows - item_rows.mean(0)) / item_rows.std(0)
    torch.testing.assert_close(model.joint_embeddings(item_rows), model.item.encode(standardized))
    # the spread of e across items grows once the small-scale table is standardised (the collapse guard)
    assert model.joint_embeddings(item_rows).std(0).mean() > 5 * before.std(0).mean()
    # stand-ins come back at the backbone's scale: decoded standardised values times std plus mean
    q = model.text_embeddings(text_rows[:2])
    expected = model.item.decode(q) * item_rows.std(0) + item_rows.mean(0)
    torch.testing.assert_close(model.cf_stand_in(text_rows[:2]), expected)


def test_a_constant_input_dimension_is_not_blown_up():
    """A dead dimension (all-MiniLM-L6-v2 has three) keeps a scale of a tenth of the median dimension's, so a
    fine-tuned SBERT moving it by 1e-3 changes the standardised input by about 0.2, not by 1e3."""
    torch.manual_seed(0)
    text_rows = 0.05 * torch.randn(500, 6)
    text_rows[:, 2] = 1e-33
    model = CollaborativeTextAlignment(3, 6, alignment_config(latent_dim=2))
    model.fit_input_scales(torch.randn(100, 3), text_rows)
    median = text_rows.std(0).median()
    torch.testing.assert_close(model.text_scale[2], 0.1 * median)
    live = [0, 1, 3, 4, 5]
    torch.testing.assert_close(model.text_scale[live], text_rows.std(0)[live])
    moved = text_rows[:1].clone()
    moved[0, 2] += 1e-3
    shift = (model._text_in(moved) - model._text_in(text_rows[:1])).abs().max()
    assert 0.1 < shift < 0.5


def test_standardization_switched_off_keeps_the_authors_networks():
    model = CollaborativeTextAlignment(2, 2, alignment_config(latent_dim=2, standardize_inputs=False))
    model.fit_input_scales(torch.randn(10, 2) * 5, torch.randn(10, 2) * 5)
    assert torch.equal(model.cf_mean, torch.zeros(2)) and torch.equal(model.text_scale, torch.ones(2))
    x = torch.randn(4, 2)
    torch.testing.assert_close(model.joint_embeddings(x), model.item.encode(x))
