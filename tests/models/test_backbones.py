"""Every CF backbone behind one interface: tiny-config testers (transformers' ModelTester style)."""

from __future__ import annotations

import pytest
import torch

from allmrec_pipeline.models import BACKBONES, build_backbone
from allmrec_pipeline.models.data import NextItemExamples, sample_negatives
from tests.configs import BACKBONE_CONFIGS

N_ITEMS, HIDDEN, BATCH, LENGTH = 99, 16, 3, 7
TINY = {
    "sasrec": {"hidden_size": HIDDEN, "num_blocks": 2, "num_heads": 2, "max_seq_len": 10},
    "gru4rec": {"hidden_size": HIDDEN, "num_layers": 2, "max_seq_len": 10},
    "nextitnet": {"hidden_size": HIDDEN, "dilations": [1, 2], "max_seq_len": 10},
    "ncf": {"hidden_size": HIDDEN, "mlp_layers": [16, 8], "max_seq_len": 10, "score_chunk": 40},
}


def tiny(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone(name, N_ITEMS, {**BACKBONE_CONFIGS[name], **TINY[name], **overrides}).eval()


def histories() -> torch.Tensor:
    history = torch.randint(1, N_ITEMS + 1, (BATCH, LENGTH), generator=torch.Generator().manual_seed(1))
    history[0, :3] = 0  # left padding
    return history


def test_all_four_backbones_are_registered():
    assert set(BACKBONES) == {"sasrec", "gru4rec", "nextitnet", "ncf"}


@pytest.mark.parametrize("name", sorted(TINY))
def test_interface_shapes(name):
    model = tiny(name)
    history = histories()
    candidates = torch.randint(1, N_ITEMS + 1, (BATCH, 5))
    assert model.item_embeddings.shape == (N_ITEMS + 1, HIDDEN)
    assert model.sequence_features(history).shape == (BATCH, LENGTH, HIDDEN)
    assert model.user_representation(history).shape == (BATCH, HIDDEN)
    assert model.score(history, candidates).shape == (BATCH, 5)
    assert model.score_all(history).shape == (BATCH, N_ITEMS + 1)


@pytest.mark.parametrize("name", sorted(TINY))
def test_padding_row_is_zero_and_never_scored(name):
    model = tiny(name)
    assert torch.count_nonzero(model.item_embeddings[0]) == 0
    candidates = torch.tensor([[5, 0, 7], [0, 0, 3], [1, 2, 0]])
    scores = model.score(histories(), candidates)
    assert torch.isneginf(scores[candidates == 0]).all()
    assert torch.isfinite(scores[candidates != 0]).all()
    assert torch.isneginf(model.score_all(histories())[:, 0]).all()


@pytest.mark.parametrize("name", sorted(TINY))
def test_score_equals_score_all_at_the_candidates(name):
    model = tiny(name)
    history, candidates = histories(), torch.tensor([[4, 9, 2], [1, 99, 50], [7, 7, 3]])
    torch.testing.assert_close(
        model.score(history, candidates), model.score_all(history).gather(1, candidates)
    )


@pytest.mark.parametrize("name", sorted(TINY))
def test_features_are_causal(name):
    model = tiny(name)
    history = histories()
    changed = history.clone()
    changed[:, -1] = (changed[:, -1] % N_ITEMS) + 1  # only the last item differs
    before, after = model.sequence_features(history), model.sequence_features(changed)
    torch.testing.assert_close(before[:, :-1], after[:, :-1])
    assert not torch.allclose(before[:, -1], after[:, -1])


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("kind", ["bce", "ce"])
def test_loss_decreases_on_a_toy_sequence_task(name, kind):
    """Item i is always followed by item i+1: any sequential model learns that in a few dozen steps."""
    model = tiny(name, dropout=0.0).train()
    starts = torch.randint(1, N_ITEMS - 12, (64,), generator=torch.Generator().manual_seed(2))
    examples = NextItemExamples.build([list(range(s, s + 10)) for s in starts.tolist()], 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    sampler = torch.Generator().manual_seed(3)
    losses = []
    for _ in range(40):
        negatives = sample_negatives(examples.inputs, examples.positives, N_ITEMS, sampler)
        loss = model.loss(examples.inputs, examples.positives, negatives, kind)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def test_unknown_backbone_and_unknown_key_name_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown backbone 'bert4rec'; choose one of \['gru4rec', 'ncf'"):
        build_backbone("bert4rec", 10, {})
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['hiden_size'\] for backbone 'sasrec'"):
        build_backbone("sasrec", 10, {**BACKBONE_CONFIGS["sasrec"], "hiden_size": 8})


def test_negatives_avoid_the_users_items_and_padding():
    inputs = torch.tensor([[0, 0, 1, 2, 3]])
    positives = torch.tensor([[0, 0, 2, 3, 4]])
    negatives = sample_negatives(inputs, positives, 6, torch.Generator().manual_seed(0))
    assert negatives[0, :2].tolist() == [0, 0]
    assert set(negatives[0, 2:].tolist()) <= {5, 6}


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_given_item_table_stands_in_for_the_models_own(name):
    """Foreign items (another dataset) get a user representation through stand-in embeddings."""
    model = tiny(name)
    history = histories()
    own = model.item_embeddings.detach().clone()
    torch.testing.assert_close(model.user_representation(history, own), model.user_representation(history))
    foreign = torch.cat([torch.zeros(1, HIDDEN), torch.randn(5, HIDDEN)])
    assert model.user_representation(torch.tensor([[0, 1, 2, 5]]), foreign).shape == (1, HIDDEN)
    with pytest.raises(ValueError, match="item_table has d=3"):
        model.user_representation(history, torch.zeros(4, 3))
