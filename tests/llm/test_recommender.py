"""The stage-2 recommender on tiny random LLMs: masking, gradients, learning, errors; one real SmolLM2 smoke."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.llm.inputs import wording_for
from allmrec_pipeline.llm.loading import load_frozen_llm, resolve_dtype
from allmrec_pipeline.llm.prompt import PromptTemplate, tokenize_prompt
from allmrec_pipeline.llm.recommender import Sample, SoftPromptRecommender
from allmrec_pipeline.models.checkpoint import CheckpointMismatchError, load_state_checked, module_checkpoint
from allmrec_pipeline.models.projectors import CandidateHead
from tests.configs import llm_spec, stage2_config, stage2_training_config
from tests.llm.tiny import tiny_llm, tiny_tokenizer

TEMPLATE = PromptTemplate(
    "{user}This user has {verb} {history} in the previous . Recommend one next {noun} for this user to "
    "{verb_present} next from the following {noun} title set , {candidates} . The recommendation is"
)
WORDING = {"noun": "item", "verb": "bought", "verb_present": "buy"}
TITLES = [
    "",
    "red lipstick",
    "blue shampoo",
    "soap",
    "hair oil",
    "nail polish gel",
    "cream mask",
    "hair brush",
    "blue gel",
]


def recommender(
    objective: str, arch: str = "llama", title_vectors: torch.Tensor | None = None, **config
) -> SoftPromptRecommender:
    torch.manual_seed(0)
    table = torch.randn(len(TITLES), 6)
    table[0] = 0
    return SoftPromptRecommender(
        tiny_llm(arch),
        tiny_tokenizer(),
        TEMPLATE,
        WORDING,
        table,
        TITLES,
        cf_dim=5,
        config=stage2_config(objective=objective, **config),
        title_vectors=title_vectors,
    )


def samples(n: int = 8) -> list[Sample]:
    generator = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        candidates = torch.randperm(8, generator=generator)[:4].add(1).tolist()
        out.append(
            Sample(torch.randn(5, generator=generator), [1 + (i % 8), 1 + ((i + 3) % 8)], candidates, i % 4)
        )
    return out


@pytest.mark.parametrize("objective", ["lm", "listwise", "embedding_head"])
def test_only_projector_parameters_receive_gradients(objective):
    model = recommender(objective)
    model.train()
    model.loss(samples(2)).backward()
    assert all(p.grad is None for p in model.llm.parameters())
    trained = dict(model.named_parameters())
    assert trained and all(not name.startswith("llm") for name in trained)
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0
        for name, p in trained.items()
        if not name.startswith("head") or objective == "embedding_head"
    )
    assert set(model.trainable_state()) == set(model.state_dict())  # the LLM is never part of what is saved


def test_lm_loss_is_masked_to_the_target_title_and_eos():
    model = recommender("lm")
    batch_samples = samples(2)
    loss = model.loss(batch_samples)
    batch = model.prompts(batch_samples, with_answer=True)
    logits = model.llm(**batch.model_inputs()).logits
    manual = []
    for row, sample in enumerate(batch_samples):
        answer = torch.as_tensor(model.answer_ids[sample.candidates[sample.target_pos]])
        assert answer[-1] == model.tokenizer.eos_token_id
        width = logits.shape[1]
        manual.append(
            F.cross_entropy(logits[row, width - len(answer) - 1 : width - 1], answer, reduction="sum")
        )
    n_tokens = sum(len(model.answer_ids[s.candidates[s.target_pos]]) for s in batch_samples)
    torch.testing.assert_close(loss, torch.stack(manual).sum() / n_tokens)


@pytest.mark.parametrize(("objective", "ratio"), [("embedding_head", 0.7), ("listwise", 0.7), ("lm", 0.85)])
def test_loss_goes_down_on_a_tiny_overfit_task(objective, ratio):
    """Four fixed samples; the LM loss also pays for the titles' tokens, which soft tokens alone cannot
    explain, so it falls less."""
    model = recommender(objective)
    data = samples(4)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    losses = []
    for _ in range(25):
        loss = model.loss(data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < ratio * losses[0], losses


def test_ablations_change_the_prompt():
    sample = samples(1)[0]
    full = recommender("embedding_head").render(sample)
    assert (
        full.startswith("[UserRep] is a user representation. This user has bought")
        and "[CandidateEmb]" in full
    )
    no_user = recommender("embedding_head", use_user=False).render(sample)
    assert "[UserRep]" not in no_user and "[HistoryEmb]" in no_user
    titles_only = recommender("lm", item_tokens="none").render(sample)
    assert "[HistoryEmb]" not in titles_only and "[CandidateEmb]" not in titles_only


def test_unknown_dataset_wording_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"no prompt wording for dataset 'toys': add stage2.wording.toys"):
        wording_for({"wording": {"beauty": WORDING}}, "toys")


def test_a_dataset_without_wording_gets_the_default_with_one_warning(caplog, monkeypatch):
    monkeypatch.setattr("allmrec_pipeline.llm.inputs._WARNED_WORDING", set())
    games = {"noun": "game", "verb": "played", "verb_present": "play"}
    wording = {"beauty": WORDING, "default": games}
    with caplog.at_level(logging.WARNING, logger="allmrec_pipeline.llm.inputs"):
        assert wording_for({"wording": wording}, "beauty") == WORDING
        assert not caplog.records
        assert wording_for({"wording": wording}, "toys") == games
        assert wording_for({"wording": wording}, "toys") == games  # every node of a run asks: one warning
    assert len(caplog.records) == 1
    assert "no prompt wording for dataset 'toys'" in caplog.text and "add stage2.wording.toys" in caplog.text


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="unknown objective 'bpr'"):
        recommender("bpr")


@pytest.mark.parametrize("model", ["/nonexistent/opt-6.7b", "facebook/opt-6.7b"])
def test_missing_model_fails_fast_with_a_clear_message(model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        FileNotFoundError, match=r"is not available locally and nothing is downloaded at run time"
    ):
        load_frozen_llm(llm_spec(model=model))


def test_dtype_choice():
    assert resolve_dtype("float32") == torch.float32
    assert resolve_dtype("auto", device="cuda:0") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8")


@pytest.mark.slow
def test_real_smollm2_smoke():
    model, tokenizer = load_frozen_llm(llm_spec(dtype="float32"))
    assert type(model).__name__ == "LlamaForCausalLM" and not any(p.requires_grad for p in model.parameters())
    torch.manual_seed(0)
    table = torch.randn(len(TITLES), 6)
    rec = SoftPromptRecommender(
        model,
        tokenizer,
        TEMPLATE,
        WORDING,
        table,
        TITLES,
        5,
        stage2_config(objective="embedding_head", soft_token_norm=3.0),
    )
    batch = samples(2)
    loss = rec.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and rec.user_proj.net[0].weight.grad is not None
    with torch.no_grad():
        assert rec.scores(batch).shape == (2, 4)
        lm = SoftPromptRecommender(
            model, tokenizer, TEMPLATE, WORDING, table, TITLES, 5, stage2_config(objective="lm")
        )
        assert lm.title_scores(batch).shape == (2, 4)


def test_random_item_tokens_replace_the_table_reproducibly():
    first, second = recommender("embedding_head", item_tokens="random"), recommender("embedding_head")
    torch.manual_seed(0)
    given = torch.randn(len(TITLES), 6)  # the table recommender() passes
    assert not torch.allclose(first.item_table[1:], given[1:])
    assert torch.equal(first.item_table, recommender("embedding_head", item_tokens="random").item_table)
    assert torch.equal(first.item_table[0], torch.zeros(6))  # padding stays zero
    assert first.item_table[1:].std() == pytest.approx(float(given[1:].std()), rel=0.3)
    assert torch.allclose(second.item_table[1:], given[1:])


def test_stage2_variants_override_the_base_parameters():
    from allmrec_pipeline.schema import merge_variant

    stage2 = {
        "item_source": "joint",
        "model": {"objective": "embedding_head", "use_user": True},
        "training": {"lr": 1e-4},
        "variants": {
            "a_llmrec": {},
            "mlp_llm": {"item_source": "cf"},
            "no_user": {"model": {"use_user": False}},
        },
    }
    assert merge_variant(stage2, "mlp_llm")["item_source"] == "cf"
    no_user = merge_variant(stage2, "no_user")
    assert no_user["model"] == {"objective": "embedding_head", "use_user": False}
    assert stage2["model"]["use_user"] is True  # the base parameters are not modified
    with pytest.raises(ConfigError, match=r"no stage-2 variant 'toy': add stage2.variants.toy"):
        merge_variant(stage2, "toy")
    stage2["variants"]["bad"] = {"modle": {}}
    with pytest.raises(ConfigError, match=r"stage2.variants.bad' has unknown key\(s\) \['modle'\]"):
        merge_variant(stage2, "bad")


@pytest.mark.parametrize("epochs", [1, 2])
def test_validation_is_scored_only_when_there_is_an_epoch_to_choose(epochs):
    from allmrec_pipeline.llm.training import train_stage2

    calls = []

    def evaluate(scores, valid):
        calls.append(scores.shape)
        return 0.5

    config = stage2_training_config(epochs=epochs, batch_size=4, lr=1e-3)
    result = train_stage2(
        recommender("embedding_head"), lambda epoch: samples(4), samples(4), config, 0, evaluate, False
    )
    assert len(calls) == (0 if epochs == 1 else epochs)
    assert result.best_epoch >= 1 and len(result.epoch_valid_hit_at_1) == epochs
    assert all(np.isnan(v) for v in result.epoch_valid_hit_at_1) == (epochs == 1)


def test_tied_head_scores_by_one_map_and_round_trips_through_its_checkpoint():
    head = CandidateHead(hidden=8, dim=4, tied=True)
    assert [name for name, _ in head.named_parameters()] == ["query.weight", "query.bias"]
    last, cands = torch.randn(2, 8), torch.randn(2, 3, 8)
    expected = torch.einsum("bd,bcd->bc", head.query(last), head.query(cands)) / 2  # 4 ** -0.5
    torch.testing.assert_close(head(last, cands), expected)
    assert head(last, last[:, None]).min() >= 0  # a query against itself: a positive semi-definite form

    model = recommender("embedding_head", head_tied=True)
    model.train()
    model.loss(samples(2)).backward()
    assert model.head.query.weight.grad.abs().sum() > 0
    with torch.no_grad():  # weights that differ from a fresh model's, so the round trip has to carry them
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter))
    checkpoint = module_checkpoint(model, "stage2_projectors", config=model.config.to_dict())
    assert not any(name.startswith("head.key") for name in checkpoint.tensors)
    rebuilt = recommender("embedding_head", head_tied=True)
    load_state_checked(rebuilt, checkpoint.tensors, "stage-2 checkpoint")
    batch = samples(2)
    torch.testing.assert_close(rebuilt.eval().head_scores(batch), model.eval().head_scores(batch))
    with pytest.raises(CheckpointMismatchError, match="head.key"):  # an untied model names the missing map
        load_state_checked(recommender("embedding_head"), checkpoint.tensors, "stage-2 checkpoint")


def test_head_warm_up_fits_only_the_head_and_keeps_its_best_held_out_epoch():
    from allmrec_pipeline.llm.training import warm_up_head

    generator = torch.Generator().manual_seed(2)
    batch = []  # a learnable rule: the target is always item 1, at a random place among 4 candidates
    for _ in range(20):
        candidates = [1, *(torch.randperm(7, generator=generator)[:3] + 2).tolist()]
        order = torch.randperm(4, generator=generator).tolist()
        candidates = [candidates[i] for i in order]
        batch.append(Sample(torch.randn(5, generator=generator), [3, 4], candidates, candidates.index(1)))
    model = recommender("embedding_head")
    frozen = {k: v.clone() for k, v in model.trainable_state().items() if not k.startswith("head")}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}

    figures = warm_up_head(model, batch, epochs=30, lr=1e-2, seed=0)

    assert figures["samples"] == 20 and 1 <= figures["best_epoch"] <= 30
    assert figures["held_out_loss_best"] < figures["held_out_loss_start"]
    assert all(torch.equal(model.trainable_state()[k], v) for k, v in frozen.items())  # projectors untouched
    assert any(not torch.equal(model.head.state_dict()[k], v) for k, v in head_before.items())
    still = recommender("embedding_head")  # nothing to gain (no epochs): the initialisation is kept
    assert warm_up_head(still, batch, epochs=0, lr=1e-2, seed=0)["best_epoch"] == 0
    with pytest.raises(ValueError, match="embedding_head"):
        warm_up_head(recommender("listwise"), batch, epochs=1, lr=1e-2, seed=0)


@pytest.mark.parametrize(("objective", "runs"), [("embedding_head", True), ("listwise", False)])
def test_training_warms_up_the_head_first_when_configured(objective, runs):
    from allmrec_pipeline.llm.training import train_stage2

    config = stage2_training_config(batch_size=4, lr=1e-3, head_warmup_epochs=3)
    result = train_stage2(recommender(objective), lambda epoch: samples(8), [], config, 0, None, False)
    assert bool(result.head_warmup) == runs  # a model without a head has nothing to warm up
    if runs:
        assert result.head_warmup["samples"] == 8 and len(result.head_warmup["held_out_loss"]) == 4


def test_a_negative_head_warm_up_is_a_clear_error():
    from allmrec_pipeline.llm.training import train_stage2

    config = stage2_training_config(head_warmup_epochs=-1)
    with pytest.raises(
        ValueError, match=r"stage2.training.head_warmup_epochs must be 0 \(off\) or more, not -1"
    ):
        train_stage2(recommender("embedding_head"), lambda epoch: samples(4), [], config, 0, None, False)


@pytest.mark.parametrize(("head_lr", "head_moves"), [(0.0, False), (None, True), (1e-2, True)])
def test_head_lr_zero_keeps_the_head_fixed_while_the_projectors_train(head_lr, head_moves, caplog):
    from allmrec_pipeline.llm.training import train_stage2

    model = recommender("embedding_head")
    before = {k: v.clone() for k, v in model.trainable_state().items()}
    config = stage2_training_config(batch_size=4, lr=1e-2, head_lr=head_lr)
    with caplog.at_level("WARNING"):
        train_stage2(model, lambda epoch: samples(8), [], config, 0, None, False)
    # a fixed head without a warm-up stays random: said, not refused
    assert ("stays at its random initialisation" in caplog.text) == (head_lr == 0)
    after = model.trainable_state()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("item_proj.") for k in moved) and any(k.startswith("user_proj.") for k in moved)
    assert any(k.startswith("head.") for k in moved) == head_moves


@pytest.mark.parametrize("head_lr", [-1, "fast"])
def test_a_wrong_head_lr_is_a_clear_error(head_lr):
    from allmrec_pipeline.llm.training import train_stage2

    with pytest.raises(
        ValueError,
        match=rf"stage2.training.head_lr must be null \(lr\), 0 \(head fixed\) or more, not {head_lr!r}",
    ):
        train_stage2(
            recommender("embedding_head"),
            lambda epoch: samples(4),
            [],
            stage2_training_config(head_lr=head_lr),
            0,
            None,
            False,
        )


def test_fit_head_without_a_held_out_share_fits_every_sample_for_exactly_its_epochs():
    from allmrec_pipeline.llm.training import fit_head
    from allmrec_pipeline.models.projectors import CandidateHead

    generator = torch.Generator().manual_seed(3)
    last = torch.randn(24, 8, generator=generator)
    cand = torch.randn(24, 4, 8, generator=generator)
    targets = torch.randint(0, 4, (24,), generator=generator)
    cand[torch.arange(24), targets] = last  # learnable: the target candidate repeats the query's features

    def loss(head):
        with torch.no_grad():
            return F.cross_entropy(head(last, cand), targets).item()

    torch.manual_seed(0)
    head = CandidateHead(8, 4)
    start = loss(head)
    figures = fit_head(head, last, cand, targets, epochs=5, lr=1e-2, seed=0, holdout=0)
    assert figures["best_epoch"] == 5 and figures["held_out_loss"] == []  # the last epoch, no selection
    assert loss(head) < start
    torch.manual_seed(0)
    longer = CandidateHead(8, 4)
    fit_head(longer, last, cand, targets, epochs=6, lr=1e-2, seed=0, holdout=0)
    assert loss(longer) != loss(head)  # one more epoch is kept too, even without a check that it helped


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_head_layer_reads_the_hidden_states_of_the_first_layers_only(arch):
    from allmrec_pipeline.llm.layers import first_layers

    model = recommender("embedding_head", arch, head_layer=1)
    batch = samples(3)
    last, cand = model.eval().head_features(batch)
    # the same LLM built with one layer (its first layer's weights, final norm included) reads the same
    full = model.llm
    config = full.config.__class__(**{**full.config.to_dict(), "num_hidden_layers": 1})
    shallow = full.__class__(config).eval()
    missing, unexpected = shallow.load_state_dict(full.state_dict(), strict=False)
    assert not missing and unexpected and all(".1." in k for k in unexpected)  # only layer 2 is left out
    inputs = model.prompts(batch).model_inputs()
    with torch.no_grad():
        expected = shallow.base_model(**inputs).last_hidden_state
        torch.testing.assert_close(last, expected[:, -1])
        everything = full.base_model(**inputs).last_hidden_state
    assert not torch.allclose(last, everything[:, -1])  # the second layer was skipped, and is back after
    assert len(next(m for m in full.modules() if isinstance(m, torch.nn.ModuleList))) == 2
    with first_layers(full, None), torch.no_grad():  # None: every layer
        torch.testing.assert_close(full.base_model(**inputs).last_hidden_state, everything)
    model.train()
    model.loss(batch).backward()  # the projectors still learn through the shorter stack
    assert model.item_proj.net[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("layer", [0, 3])
def test_a_head_layer_outside_the_llm_is_a_clear_error(layer):
    with pytest.raises(
        ValueError, match=rf"head_layer must be between 1 and the LLM's 2 layers, not {layer}"
    ):
        recommender("embedding_head", head_layer=layer)


def test_head_reads_titles_averages_the_hidden_states_over_each_title_s_tokens():
    model = recommender("embedding_head", head_reads="titles").eval()
    batch = samples(3)
    query, keys = model.head_features(batch)
    prompts = model.prompts(batch)
    with torch.no_grad():
        hidden = model.llm.base_model(**prompts.model_inputs()).last_hidden_state.float()
    for row, (positions, sample) in enumerate(zip(prompts.positions, batch, strict=True)):
        alone = tokenize_prompt(model.tokenizer, model.render(sample))  # unpadded: positions from 0
        for soft, item in zip(alone.positions["candidate"], sample.candidates, strict=True):
            title = alone.input_ids[soft - model.title_spans["candidate"][item] : soft]
            assert title == model.tokenizer(f'"{model.titles[item]}"', add_special_tokens=False)["input_ids"]
        means = []
        for col, (soft, item) in enumerate(zip(positions["candidate"], sample.candidates, strict=True)):
            n = model.title_spans["candidate"][item]
            torch.testing.assert_close(keys[row, col], hidden[row, soft - n : soft].mean(0))
        for soft, item in zip(positions["history"], sample.history, strict=True):
            means.append(hidden[row, soft - model.title_spans["history"][item] : soft].mean(0))
        torch.testing.assert_close(query[row], torch.stack(means).mean(0))
    with pytest.raises(ValueError, match="head_reads"):
        recommender("embedding_head", head_reads="middle")


def test_head_reads_title_tokens_keeps_every_title_token_s_hidden_state_and_nothing_else():
    model = recommender("embedding_head", head_reads="title_tokens").eval()
    batch = samples(3)
    batch[1].history = batch[1].history[:1]  # fewer history items than n_history: their slots stay empty
    history, candidates = model.head_features(batch)
    prompts = model.prompts(batch)
    with torch.no_grad():
        hidden = model.llm.base_model(**prompts.model_inputs()).last_hidden_state.float()
    width = max(model.title_spans["history"])  # one item's slot in the flattened history
    assert history.shape == (3, model.config.n_history * width)
    for row, (positions, sample) in enumerate(zip(prompts.positions, batch, strict=True)):
        for col, (soft, item) in enumerate(zip(positions["history"], sample.history, strict=True)):
            span = model.title_spans["history"][item]
            kept = history.mask[row, col * width : (col + 1) * width]
            assert kept.sum() == span and kept[:span].all()
            torch.testing.assert_close(
                history.values[row, col * width : col * width + span], hidden[row, soft - span : soft]
            )
        assert history.mask[row].sum() == sum(model.title_spans["history"][i] for i in sample.history)
        assert not (history.values[row] * ~history.mask[row, :, None]).any()  # padding is zeros
        for col, (soft, item) in enumerate(zip(positions["candidate"], sample.candidates, strict=True)):
            span = model.title_spans["candidate"][item]
            assert candidates.mask[row, col].sum() == span  # only its own title's tokens
            torch.testing.assert_close(candidates.values[row, col, :span], hidden[row, soft - span : soft])
            assert not candidates.values[row, col, span:].any()


def test_the_token_match_head_scores_each_candidate_token_by_its_best_history_token():
    from allmrec_pipeline.models.projectors import Padded, TokenMatchHead

    torch.manual_seed(0)
    head = TokenMatchHead(6, 4)
    history = Padded(torch.randn(2, 5, 6), torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool))
    mask = torch.tensor([[[1, 1, 0], [1, 0, 0]], [[1, 1, 1], [0, 0, 0]]], dtype=torch.bool)
    candidates = Padded(torch.randn(2, 2, 3, 6), mask)
    with torch.no_grad():
        scores = head(history, candidates)
        q, k = head.query(history.values[0, :3]), head.key(candidates.values[0, 0, :2])
        expected = (k @ q.T * 4**-0.5).max(dim=1).values.mean()
    torch.testing.assert_close(scores[0, 0], expected)
    assert torch.equal(scores[1], torch.zeros(2))  # no history tokens, or no candidate tokens: 0


def test_head_scores_in_a_padded_batch_equal_one_sample_at_a_time():
    # the prompts differ in length (left padding) and the title tokens in number (masks)
    for head_reads in ("soft_tokens", "titles", "title_tokens"):
        model = recommender("embedding_head", head_reads=head_reads).eval()
        batch = samples(5)
        batch[1].history = batch[1].history[:1]
        with torch.no_grad():
            together = model.head_scores(batch)
            alone = torch.cat([model.head_scores([s]) for s in batch])
        torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("killed_at", [(1, 2), (1, 6), (2, 4)])  # (epoch, batches done): inside, at the end
def test_stage2_interrupted_resumes_and_ends_as_an_uninterrupted_run(tmp_path, killed_at):
    from allmrec_pipeline import resume
    from allmrec_pipeline.llm.training import train_stage2

    config = stage2_training_config(
        epochs=2, batch_size=2, lr=1e-2, head_warmup_epochs=2, max_valid_rows=4, n_negatives=3
    )

    def evaluate(scores, valid):
        return float((scores.argmax(1) == np.array([s.target_pos for s in valid])).mean())

    class Killed(BaseException):
        pass

    class DiesAfterSaving(resume.TrainingCheckpoints):
        def save(self, state):
            super().save(state)
            if (state["epoch"], state["step"]) == killed_at:
                raise Killed

    def run(checkpoints):
        model = recommender("embedding_head")
        result = train_stage2(
            model,
            lambda epoch: samples(12),
            samples(4),
            config,
            0,
            evaluate,
            False,
            checkpoints,
            every_steps=2,
        )
        return model, result

    with pytest.raises(Killed):
        run(DiesAfterSaving(tmp_path, "stage2", "k"))
    model, result = run(resume.TrainingCheckpoints(tmp_path, "stage2", "k"))
    assert result.resumed_from == killed_at and list(tmp_path.iterdir()) == []
    whole_model, whole = run(None)
    assert whole.resumed_from == (0, 0)
    assert result.step_loss == whole.step_loss and len(whole.step_loss) == 12
    assert result.epoch_valid_hit_at_1 == whole.epoch_valid_hit_at_1 and result.best_epoch == whole.best_epoch
    timing = ("seconds", "feature_seconds")
    assert {k: v for k, v in result.head_warmup.items() if k not in timing} == {
        k: v for k, v in whole.head_warmup.items() if k not in timing
    }
    for key, value in whole_model.trainable_state().items():
        assert torch.equal(model.trainable_state()[key], value), key


def test_an_identity_token_match_starts_as_the_cosine_of_the_hidden_states():
    from allmrec_pipeline.models.projectors import Padded, TokenMatchHead

    torch.manual_seed(0)
    head = TokenMatchHead(6, 4, init="identity")
    history = Padded(torch.randn(1, 5, 6), torch.tensor([[1, 1, 1, 0, 0]], dtype=torch.bool))
    candidates = Padded(torch.randn(1, 2, 3, 6), torch.tensor([[[1, 1, 0], [1, 1, 1]]], dtype=torch.bool))
    with torch.no_grad():
        scores = head(history, candidates)
    h = torch.nn.functional.normalize(history.values[0, :3], dim=-1)
    c = torch.nn.functional.normalize(candidates.values[0, 0, :2], dim=-1)
    torch.testing.assert_close(scores[0, 0], (c @ h.T).max(dim=1).values.mean())
    twin = Padded(
        history.values[:, :1].unsqueeze(1).expand(1, 1, 1, 6), torch.ones(1, 1, 1, dtype=torch.bool)
    )
    assert torch.allclose(head(history, twin), torch.ones(1, 1))  # a token the history holds matches fully
    with pytest.raises(ValueError, match="head_init 'identity' needs head_reads title_tokens"):
        recommender("embedding_head", head_reads="titles", head_init="identity")
    assert recommender("embedding_head", head_reads="title_tokens", head_init="identity").head.key is None
