"""The TALLRec baseline's LoRA adapters: in a copy of the shared LLM, the only weights trained and saved."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import torch

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.llm.inputs import build_recommender
from allmrec_pipeline.llm.recommender import SoftPromptRecommender, recommender_from_checkpoint
from allmrec_pipeline.models.checkpoint import module_checkpoint
from allmrec_pipeline.resources import PeakMemory
from tests.llm.test_recommender import TEMPLATE, TITLES, WORDING, recommender, samples

TALLREC = {
    "use_user": False,
    "item_tokens": "none",
    "lora_rank": 2,
    "lora_alpha": 4.0,
    "lora_target_modules": ("q_proj", "v_proj"),
}


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _around(plain: SoftPromptRecommender, **config) -> SoftPromptRecommender:
    """A recommender around ``plain``'s LLM (the one a run's nodes share), with ``plain``'s config plus these."""
    return SoftPromptRecommender(
        plain.llm, plain.tokenizer, TEMPLATE, WORDING, plain.item_table, TITLES, 5,
        replace(plain.config, **config),
    )  # fmt: skip


def test_fresh_adapters_score_as_the_frozen_llm_and_train_in_a_copy():
    plain = recommender("listwise", use_user=False, item_tokens="none")
    shared = plain.llm
    before = _weights(shared)
    model = _around(plain, **TALLREC)
    batch = samples(4)
    # B starts at zero: the adapted copy scores exactly as the LLM it copies
    torch.testing.assert_close(model.title_scores(batch), plain.title_scores(batch), rtol=0, atol=0)
    assert model.llm is not shared
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    losses = []
    model.train()
    for _ in range(15):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
    # the shared LLM is untouched: same weights, same scores as before
    assert all(torch.equal(before[k], v) for k, v in shared.state_dict().items())
    assert not any(p.requires_grad for p in shared.parameters())
    assert not torch.allclose(model.eval().title_scores(batch), plain.title_scores(batch))


def test_only_the_adapters_train_and_are_saved_and_they_round_trip():
    model = recommender("listwise", **TALLREC)
    assert model.user_proj is None and model.item_proj is None  # no soft token in its prompt
    model.train()
    model.loss(samples(2)).backward()
    trained = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert trained and all(name.startswith("lora.") for name in trained)
    assert all(p.grad is not None for p in trained.values())  # every adapter's A and B
    assert not any(p.requires_grad for p in model.llm.parameters() if p not in set(trained.values()))
    layers = {name.split(".")[1] for name in trained}
    assert len(layers) == 2 * 2  # q_proj and v_proj of both tiny layers
    with torch.no_grad():
        for parameter in trained.values():
            parameter.add_(torch.randn_like(parameter))
    checkpoint = module_checkpoint(
        model,
        "stage2_projectors",
        config=model.config.to_dict(),
        template=TEMPLATE.__dict__,
        wording=WORDING,
        cf_dim=5,
        item_dim=int(model.item_table.shape[1]),
    )
    assert set(checkpoint.tensors) == set(model.trainable_state()) == {f"{n}" for n in trained}
    fresh = recommender("listwise", use_user=False, item_tokens="none")
    rebuilt = recommender_from_checkpoint(checkpoint, fresh.llm, fresh.tokenizer, fresh.item_table, TITLES)
    batch = samples(3)
    torch.testing.assert_close(rebuilt.title_scores(batch), model.eval().title_scores(batch))
    assert not torch.allclose(rebuilt.title_scores(batch), fresh.title_scores(batch))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lora_target_modules": ["qkv"]}, r"\['qkv'\] not among the LLM's linear layers"),
        ({"lora_rank": 0}, "lora_rank must be an integer >= 1"),
        ({"lora_dropout": 1.0}, "lora_dropout in"),
    ],
)
def test_bad_lora_settings_are_clear_config_errors(overrides, message):
    plain = recommender("listwise")
    stage2 = {"model": {**plain.config.to_dict(), **TALLREC, **overrides}, "template": TEMPLATE.__dict__}
    with pytest.raises(ConfigError, match=message):
        build_recommender(plain.llm, plain.tokenizer, stage2, WORDING, plain.item_table, TITLES, 5)


def test_peak_memory_sees_what_the_block_held_at_its_largest():
    with PeakMemory("cpu") as baseline:
        pass
    with PeakMemory("cpu", interval=0.01) as peak:
        block = torch.ones(64 * 2**20)  # 256 MiB, touched
        time.sleep(0.2)
        del block  # gone before the block ends: only a sample taken while it lived can see it
    assert peak.gb - baseline.gb > 0.2
