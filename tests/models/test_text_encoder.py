"""The stage-1 text encoders: the frozen-layer cache is exact, frozen modules never drop out, and the
precomputed table equals the encoder it came from."""

from __future__ import annotations

import pytest
import torch

from allmrec_pipeline.models.text_encoder import (
    CachedTextEncoder,
    PrecomputedTextEncoder,
    disable_dropout,
    load_sentence_transformer,
    set_trainable_layers,
)
from tests.configs import BACKBONE_CONFIGS, alignment_config, stage1_training_config

TEXTS = [
    "",
    "Title: Rose hand cream, Description: a rich cream for dry hands",
    "Title: Nail polish remover",
    "Title: Argan oil shampoo, Description: sulfate-free, for coloured hair, 250 ml",
    "Title: Mascara",
    "Title: Vitamin C serum, Description: brightening serum with hyaluronic acid and vitamin E for all skin types",
    "Title: Lip balm, Description: SPF 15",
]


def _encoder(trainable_layers: int | None, cache: bool) -> CachedTextEncoder:
    sbert = load_sentence_transformer("embedded")
    set_trainable_layers(sbert, False, trainable_layers)
    disable_dropout(sbert)  # so the two paths can be compared number for number
    return CachedTextEncoder(sbert, TEXTS, max_tokens=32, chunk_size=4, cache_frozen_layers=cache).train()


def test_frozen_layer_cache_gives_the_full_models_outputs_and_gradients():
    items = torch.tensor([[1, 2], [3, 4], [5, 6], [2, 5]])
    results = []
    for cache in (False, True):
        encoder = _encoder(trainable_layers=2, cache=cache)
        out = encoder(items)
        out.square().sum().backward()
        grads = {n: p.grad.clone() for n, p in encoder.named_parameters() if p.requires_grad}
        results.append((encoder, out.detach(), grads))
    (full, out_full, grads_full), (cached, out_cached, grads_cached) = results
    assert full._prefix is None and cached._prefix is not None and len(cached._prefix.top) == 2
    torch.testing.assert_close(out_cached, out_full, atol=1e-5, rtol=1e-4)
    assert grads_full.keys() == grads_cached.keys() and len(grads_full) > 0
    for name, grad in grads_full.items():
        torch.testing.assert_close(grads_cached[name], grad, atol=1e-5, rtol=1e-3, msg=name)


def test_a_fully_trainable_sbert_is_never_cached():
    encoder = _encoder(trainable_layers=None, cache=True)
    encoder(torch.tensor([1, 2]))
    assert encoder._prefix is None


def test_frozen_modules_stay_in_eval_mode_while_training():
    sbert = load_sentence_transformer("embedded")
    set_trainable_layers(sbert, False, 1)
    CachedTextEncoder(sbert, TEXTS, max_tokens=32).train()
    layers = sbert[0].model.encoder.layer
    assert not sbert[0].model.embeddings.training  # frozen: no dropout
    assert not layers[0].training and layers[-1].training  # only the trainable top layer drops out
    frozen = CachedTextEncoder(set_frozen(load_sentence_transformer("embedded")), TEXTS, 32).train()
    a, b = frozen(torch.tensor([1, 3])), frozen(torch.tensor([1, 3]))
    torch.testing.assert_close(a, b)  # a frozen SBERT is deterministic even in training mode


def set_frozen(sbert):
    set_trainable_layers(sbert, True, None)
    return sbert


def test_precomputed_table_matches_the_encoder_and_row_zero_is_padding():
    encoder = _encoder(trainable_layers=None, cache=False)
    table = PrecomputedTextEncoder.from_encoder(encoder, n_items=len(TEXTS) - 1)
    items = torch.tensor([[3, 1], [6, 2]])
    torch.testing.assert_close(table(items), encoder.encode_all(items.reshape(-1)).reshape(2, 2, -1))
    assert table.dim == encoder.dim and torch.count_nonzero(table.table[0]) == 0
    with pytest.raises(IndexError):
        table(torch.tensor([len(TEXTS)]))


def test_frozen_text_epochs_train_the_alignment_networks_on_a_fixed_sbert():
    from allmrec_pipeline.models import build_backbone
    from allmrec_pipeline.models.alignment import CollaborativeTextAlignment
    from allmrec_pipeline.models.alignment_training import (
        frozen_user_signal,
        train_alignment,
    )

    n_items = len(TEXTS) - 1
    torch.manual_seed(0)
    backbone = build_backbone(
        "sasrec",
        n_items,
        {**BACKBONE_CONFIGS["sasrec"], "hidden_size": 8, "num_blocks": 1, "num_heads": 1, "max_seq_len": 5},
    ).requires_grad_(False)
    encoder = _encoder(trainable_layers=1, cache=True)
    torch.manual_seed(1)
    alignment = CollaborativeTextAlignment(8, encoder.dim, alignment_config(latent_dim=4))
    signal = frozen_user_signal(backbone, [[1, 2, 3], [4, 5, 6], [2, 4], [6, 1, 3]], all_items=False)
    config = stage1_training_config(epochs=1, frozen_text_epochs=2, batch_size=2, lr=1e-2, recall_sample=6)

    def snapshot() -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in encoder.named_parameters() if p.requires_grad}

    result = train_alignment(alignment, backbone, encoder, signal, config, seed=0, progress=False)
    assert len(result.history["loss_total"]) == 3 == len(result.steps)  # 1 fine-tuning + 2 frozen epochs
    assert result.steps == [2, 2, 2]
    # Rerun with only the fine-tuning epoch: SBERT ends where the 3-epoch run left it.
    sbert_before = snapshot()
    encoder2 = _encoder(trainable_layers=1, cache=True)
    torch.manual_seed(1)
    alignment2 = CollaborativeTextAlignment(8, encoder2.dim, alignment_config(latent_dim=4))
    once = stage1_training_config(epochs=1, frozen_text_epochs=0, batch_size=2, lr=1e-2, recall_sample=6)
    train_alignment(alignment2, backbone, encoder2, signal, once, seed=0, progress=False)
    for name, param in encoder2.named_parameters():
        if param.requires_grad:
            torch.testing.assert_close(param.detach(), sbert_before[name], msg=name)
    assert not torch.equal(alignment.item.encoder.weight, alignment2.item.encoder.weight)


@pytest.mark.parametrize("cache", [False, True])
@pytest.mark.parametrize("killed_after", [1, 2, 3])  # in SBERT's fine-tuning epochs, then in the frozen ones
def test_stage1_interrupted_after_an_epoch_resumes_and_ends_as_an_uninterrupted_run(
    tmp_path, killed_after, cache
):
    """Bit-equal without the frozen-layer cache; with it, equal to float rounding: the cache holds each item's
    frozen-layer output from the batch it was first encoded in, and a resumed run fills it in other batches."""
    from allmrec_pipeline import resume
    from allmrec_pipeline.models import build_backbone
    from allmrec_pipeline.models.alignment import CollaborativeTextAlignment
    from allmrec_pipeline.models.alignment_training import frozen_user_signal, train_alignment

    torch.manual_seed(0)
    backbone = build_backbone(
        "sasrec",
        len(TEXTS) - 1,
        {**BACKBONE_CONFIGS["sasrec"], "hidden_size": 8, "num_blocks": 1, "num_heads": 1, "max_seq_len": 5},
    ).requires_grad_(False)
    signal = frozen_user_signal(backbone, [[1, 2, 3], [4, 5, 6], [2, 4], [6, 1, 3]], all_items=False)
    config = stage1_training_config(epochs=2, frozen_text_epochs=2, batch_size=2, lr=1e-2, recall_sample=6)

    def run(checkpoints):
        encoder = _encoder(trainable_layers=1, cache=cache)
        torch.manual_seed(1)
        alignment = CollaborativeTextAlignment(8, encoder.dim, alignment_config(latent_dim=4))
        result = train_alignment(
            alignment, backbone, encoder, signal, config, seed=0, progress=False, checkpoints=checkpoints
        )
        return alignment, encoder, result

    class Killed(BaseException):
        pass

    class DiesAfterSaving(resume.TrainingCheckpoints):
        def save(self, state):
            super().save(state)
            if state["epoch"] == killed_after:
                raise Killed

    with pytest.raises(Killed):
        run(DiesAfterSaving(tmp_path, "stage1", "k"))
    alignment, encoder, result = run(resume.TrainingCheckpoints(tmp_path, "stage1", "k"))
    assert result.resumed_from_epoch == killed_after and list(tmp_path.iterdir()) == []
    whole_alignment, whole_encoder, whole = run(None)
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if cache else {"rtol": 0, "atol": 0}
    assert result.steps == whole.steps and result.history.keys() == whole.history.keys()
    for key, values in whole.history.items():
        torch.testing.assert_close(
            torch.tensor(result.history[key]), torch.tensor(values), **tolerance, msg=key
        )
    # SBERT's weights only without the cache: an attention key bias has a zero true gradient, and Adam scales
    # the float noise it gets instead up to full steps; SBERT's outputs (the vectors table) are compared instead
    pairs = [(alignment, whole_alignment)] + ([] if cache else [(encoder, whole_encoder)])
    for mine, theirs in pairs:
        for (name, value), other in zip(mine.state_dict().items(), theirs.state_dict().values(), strict=True):
            torch.testing.assert_close(value, other, **tolerance, msg=lambda m, name=name: f"{name}: {m}")
    torch.testing.assert_close(result.text_vectors.table, whole.text_vectors.table, **tolerance)
