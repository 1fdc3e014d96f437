"""Stage 2's training samples: held-out targets the CF model never trained on, or the last training item."""

from __future__ import annotations

import pandas as pd
import pytest

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.llm.inputs import training_samples
from tests.configs import stage2_training_config
from tests.models.test_backbones import N_ITEMS, tiny

# full sequences; training sequences are all but the last two items (user 4: train-only, no next item)
SEQUENCES = pd.DataFrame(
    {
        "user_idx": [1, 2, 3, 4],
        "items": [[5, 6, 7, 8, 9], [10, 11, 12, 13], [20, 21, 22, 23, 24, 25], [30, 31]],
    }
)
TRAIN = pd.DataFrame({"user_idx": [1, 2, 3, 4], "items": [[5, 6, 7], [10, 11], [20, 21, 22, 23], [30, 31]]})


def _samples(targets: str, exclude=()):
    config = stage2_training_config(targets=targets, n_negatives=5)
    make, n_users = training_samples(TRAIN, SEQUENCES, tiny("sasrec"), N_ITEMS, config, 0, exclude)
    return make(1), n_users


def test_held_out_targets_are_the_next_item_after_the_training_sequence():
    samples, n_users = _samples("held_out", exclude=[3])
    assert n_users == 2  # user 3 holds a frozen validation row; user 4 has no next item
    by_history = {tuple(s.history): s.candidates[s.target_pos] for s in samples}
    assert by_history == {(5, 6, 7): 8, (10, 11): 12}
    touched = {items[0]: set(items) for items in SEQUENCES["items"]}
    for sample in samples:
        negatives = set(sample.candidates) - {sample.candidates[sample.target_pos]}
        assert len(negatives) == 5 and sample.cf_scores.shape == (6,)
        assert not negatives & touched[sample.history[0]]  # never an item the user touched, test included


def test_last_training_item_targets_are_what_the_cf_model_fitted():
    samples, n_users = _samples("last_training_item")
    assert n_users == 4
    assert {tuple(s.history): s.candidates[s.target_pos] for s in samples} == {
        (5, 6): 7,
        (10,): 11,
        (20, 21, 22): 23,
        (30,): 31,
    }


def test_unknown_targets_and_no_sample_fail_clearly():
    with pytest.raises(ConfigError, match="stage2.training.targets"):
        _samples("newest")
    with pytest.raises(ConfigError, match="no training sample"):
        _samples("held_out", exclude=[1, 2, 3])
