"""Checkpoints (safetensors, shape-checked) and the shared training loop (seeded, early-stopped)."""

from __future__ import annotations

import math

import pytest
import torch

from allmrec_pipeline.datasets import SafetensorsDataset
from allmrec_pipeline.models import build_backbone
from allmrec_pipeline.models.checkpoint import CheckpointMismatchError, backbone_checkpoint, load_backbone
from allmrec_pipeline.models.data import CandidateRows, NextItemExamples
from allmrec_pipeline.models.training import train
from tests.configs import BACKBONE_CONFIGS, training_config

SEQUENCES = [[(start + k) % 40 + 1 for k in range(8)] for start in range(60)]


def _valid_rows() -> CandidateRows:
    histories = [seq[:-1] for seq in SEQUENCES[:20]]
    targets = [seq[-1] for seq in SEQUENCES[:20]]
    candidates = [[t, (t % 40) + 1, ((t + 5) % 40) + 1] for t in targets]
    return CandidateRows.build(histories, candidates, targets, 10)


def _train(seed: int):
    torch.manual_seed(seed)
    model = build_backbone("sasrec", 40, {**BACKBONE_CONFIGS["sasrec"], "hidden_size": 16, "max_seq_len": 10})
    config = training_config(epochs=3, batch_size=16, patience=5)
    result = train(model, NextItemExamples.build(SEQUENCES, 10), _valid_rows(), config, seed, progress=False)
    return model, result


def test_training_is_deterministic_under_a_seed():
    (first, first_result), (second, second_result) = _train(5), _train(5)
    assert first_result.history["train_loss"] == second_result.history["train_loss"]
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    _, other = _train(6)
    assert other.history["train_loss"] != first_result.history["train_loss"]


def test_training_keeps_the_best_epoch_and_records_curves():
    model, result = _train(5)
    assert len(result.history["train_loss"]) == 3
    assert result.best_epoch == 1 + max(range(3), key=lambda i: result.history["valid_ndcg_at_10"][i])
    assert result.best_valid_ndcg_at_10 == max(result.history["valid_ndcg_at_10"])


def test_early_stopping_stops_after_patience():
    torch.manual_seed(0)
    model = build_backbone(
        "gru4rec", 40, {**BACKBONE_CONFIGS["gru4rec"], "hidden_size": 8, "max_seq_len": 10}
    )
    config = training_config(epochs=50, batch_size=16, patience=2, lr=0.0)  # lr 0: never improves
    result = train(model, NextItemExamples.build(SEQUENCES, 10), _valid_rows(), config, 0, progress=False)
    assert result.stopped_early and result.best_epoch == 1
    assert len(result.history["train_loss"]) == 3


@pytest.mark.parametrize("decay", [None, 0.5])
def test_lr_decays_after_each_validation_plateau(decay):
    torch.manual_seed(0)
    model = build_backbone(
        "gru4rec", 40, {**BACKBONE_CONFIGS["gru4rec"], "hidden_size": 8, "max_seq_len": 10}
    )
    # a learning rate too small to change a ranking: every evaluation after the first is a plateau
    config = training_config(
        epochs=6, batch_size=16, patience=50, lr=1e-9, lr_decay=decay, lr_decay_patience=1
    )
    result = train(model, NextItemExamples.build(SEQUENCES, 10), _valid_rows(), config, 0, progress=False)
    factors = (
        [1, 1, 1, 0.5, 0.5, 0.25] if decay else [1] * 6
    )  # a decay after every 2 evaluations without gain
    assert result.history["lr"] == pytest.approx([1e-9 * f for f in factors])


def test_cosine_schedule_anneals_to_zero_over_the_epoch_budget():
    torch.manual_seed(0)
    model = build_backbone(
        "gru4rec", 40, {**BACKBONE_CONFIGS["gru4rec"], "hidden_size": 8, "max_seq_len": 10}
    )
    examples = NextItemExamples.build(SEQUENCES, 10)
    config = training_config(epochs=4, batch_size=16, patience=50, lr=1e-2, lr_schedule="cosine")
    result = train(model, examples, _valid_rows(), config, 0, progress=False)
    steps = -(-len(examples) // 16)
    expected = [1e-2 * (1 + math.cos(math.pi * epoch * steps / (4 * steps))) / 2 for epoch in range(4)]
    # each epoch's starting lr, falling to 0 at the end
    assert result.history["lr"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lr_schedule": "linear"}, r"training.lr_schedule: unknown 'linear'"),
        ({"lr_schedule": "cosine", "lr_decay": 0.5}, r"lr_schedule 'cosine' and training.lr_decay"),
    ],
)
def test_lr_schedule_errors_name_the_key(overrides, message):
    model = build_backbone(
        "gru4rec", 40, {**BACKBONE_CONFIGS["gru4rec"], "hidden_size": 8, "max_seq_len": 10}
    )
    with pytest.raises(ValueError, match=message):
        train(model, NextItemExamples.build(SEQUENCES, 10), _valid_rows(), training_config(**overrides), 0)


def test_weight_average_is_what_is_validated_and_kept():
    def run(ema_decay):
        torch.manual_seed(0)
        model = build_backbone(
            "sasrec", 40, {**BACKBONE_CONFIGS["sasrec"], "hidden_size": 16, "max_seq_len": 10, "dropout": 0.0}
        )
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        config = training_config(epochs=2, batch_size=16, patience=5, ema_decay=ema_decay)
        result = train(model, NextItemExamples.build(SEQUENCES, 10), _valid_rows(), config, 0, progress=False)
        return model, initial, result

    raw, _, raw_result = run(None)
    latest, _, latest_result = run(0.0)  # decay 0: the average is the latest weights
    assert latest_result.history["valid_ndcg_at_10"] == raw_result.history["valid_ndcg_at_10"]
    for key, value in raw.state_dict().items():
        torch.testing.assert_close(latest.state_dict()[key], value)
    # decay 1: the average never moves after it is seeded with the first step's weights (torch's rule)
    frozen, initial, frozen_result = run(1.0)
    assert frozen_result.history["valid_ndcg_at_10"][0] == frozen_result.history["valid_ndcg_at_10"][1]
    moved = [key for key, value in frozen.state_dict().items() if not torch.equal(value, initial[key])]
    assert moved  # one step away from the initial weights
    assert any(not torch.equal(frozen.state_dict()[k], raw.state_dict()[k]) for k in moved)


def test_checkpoint_round_trip_through_the_versioned_dataset(tmp_path):
    model, _ = _train(5)
    dataset = SafetensorsDataset(filepath=str(tmp_path / "cf_model.safetensors"), version=None)
    dataset.save(backbone_checkpoint(model))
    restored = load_backbone(dataset.load(), expected_n_items=40)
    history, candidates = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[4, 5, 6]])
    torch.testing.assert_close(model.eval().score(history, candidates), restored.score(history, candidates))


def test_a_save_killed_halfway_leaves_the_previous_version_the_newest(tmp_path, monkeypatch):
    from kedro.io.core import Version

    from allmrec_pipeline.models.checkpoint import Checkpoint

    def versioned(save: str | None) -> SafetensorsDataset:
        return SafetensorsDataset(filepath=str(tmp_path / "m.safetensors"), version=Version(None, save))

    versioned("2026-01-01T00.00.00.000Z").save(Checkpoint({"w": torch.ones(2)}, {"kind": "first"}))
    second = versioned("2026-01-02T00.00.00.000Z")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies between the write and the rename

    monkeypatch.setattr(second._fs, "mv", killed)
    with pytest.raises(KeyboardInterrupt):
        second.save(Checkpoint({"w": torch.zeros(2)}, {"kind": "second"}))
    monkeypatch.undo()
    leftovers = sorted(p.name for p in (tmp_path / "m.safetensors").rglob("*") if p.is_file())
    assert leftovers == ["m.safetensors"]  # the partial file is removed, no truncated second version
    tensors, metadata = versioned(None).load()
    assert metadata["kind"] == "first" and torch.equal(tensors["w"], torch.ones(2))


def test_checkpoint_from_another_dataset_is_refused():
    model, _ = _train(5)
    with pytest.raises(
        CheckpointMismatchError, match="has 40 items but the item index has 41: it was trained on another"
    ):
        load_backbone(backbone_checkpoint(model), expected_n_items=41)


def test_weights_that_do_not_fit_the_config_are_listed():
    model, _ = _train(5)
    tensors, metadata = backbone_checkpoint(model)
    metadata = {**metadata, "config": metadata["config"].replace('"hidden_size": 16', '"hidden_size": 32')}
    with pytest.raises(
        CheckpointMismatchError,
        match=r"does not fit the model \(\d+ tensor\(s\)\): .*attns.0.key.weight: checkpoint \(16, 16\) vs model \(32, 32\)",
    ):
        load_backbone((tensors, metadata))


def test_a_non_backbone_file_is_refused():
    with pytest.raises(CheckpointMismatchError, match="not a CF backbone checkpoint"):
        load_backbone(({}, {"kind": "stage1_alignment"}))


def test_windows_cover_every_position_exactly_once():
    sequence = list(range(1, 13))  # 12 items, max_len 4: targets 2..12 each once
    plain = NextItemExamples.build([sequence], 4)
    windowed = NextItemExamples.build([sequence], 4, windows=True)
    assert len(plain) == 1 and plain.positives[0].tolist() == [9, 10, 11, 12]
    targets = sorted(t for row in windowed.positives.tolist() for t in row if t)
    assert targets == list(range(2, 13))
    assert windowed.inputs[0].tolist() == [8, 9, 10, 11] and windowed.positives[-1].tolist() == [0, 2, 3, 4]


def test_overlapping_windows_train_each_target_once_with_more_history():
    sequence = list(range(1, 13))  # items 1..12; targets 2..12
    side_by_side = NextItemExamples.build([sequence], 4, windows=True)
    assert NextItemExamples.build([sequence], 4, windows=True, stride=4).positives.tolist() == (
        side_by_side.positives.tolist()
    )
    overlapping = NextItemExamples.build([sequence], 4, windows=True, stride=2)
    rows = list(zip(overlapping.inputs.tolist(), overlapping.positives.tolist(), strict=True))
    assert rows == [
        ([8, 9, 10, 11], [0, 0, 11, 12]),
        ([6, 7, 8, 9], [0, 0, 9, 10]),
        ([4, 5, 6, 7], [0, 0, 7, 8]),
        ([2, 3, 4, 5], [0, 0, 5, 6]),
        ([0, 1, 2, 3], [0, 2, 3, 4]),  # a sequence's first window trains all of its targets
    ]
    targets = sorted(t for row in overlapping.positives.tolist() for t in row if t)
    assert targets == list(range(2, 13))
    # every target after the first window's is predicted from >= max_len - stride + 1 = 3 items of history
    for inputs, positives in rows[:-1]:
        for position, target in enumerate(positives):
            assert not target or sum(1 for i in inputs[: position + 1] if i) >= 3
    with pytest.raises(ValueError, match=r"training.window_stride must be in 1..4 \(max_seq_len\), got 5"):
        NextItemExamples.build([sequence], 4, windows=True, stride=5)
