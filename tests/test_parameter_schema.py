"""The parameters' schema: a run whose parameters have an unknown key, a wrong type or a value out of range fails
before its first node, naming the key; every shipped environment passes it."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.schema import base_parameters, check_parameters, load_parameters, merge_variant


@pytest.fixture(scope="module")
def base_params() -> dict:
    return base_parameters()


def _kedro(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "run", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("env", ["base", "paper", "video_games", "baselines", "team", "gpu"])
def test_every_shipped_environment_passes(env):
    check_parameters(load_parameters(env))  # raises on any fault


def test_a_misspelled_key_in_conf_local_fails_before_the_first_node(project_copy):
    with (project_copy / "conf/local/parameters.yml").open("a") as file:
        file.write("pretrain_cf:\n  trainig:\n    epochs: 1\n")
    bootstrap_project(project_copy)
    cwd = Path.cwd()
    os.chdir(project_copy)
    try:
        message = r"pretrain_cf\.trainig: unknown key \(nearest known: 'training'\)"
        with (
            pytest.raises(ConfigError, match=message),
            KedroSession.create(project_path=project_copy) as session,
        ):
            session.run(pipeline_name="ingest_amazon")
    finally:
        os.chdir(cwd)
    assert not (project_copy / "data").exists() or not any((project_copy / "data").rglob("*.parquet"))


def test_a_param_that_is_not_a_number_fails_with_the_key_and_a_nonzero_exit(project_copy):
    result = _kedro(project_copy, "--pipelines", "ingest_amazon", "--params", "pretrain_cf.training.lr=abc")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "pretrain_cf.training.lr: Input should be a valid number (got 'abc')" in output
    assert "TypeError" not in output
    assert "deprecated" not in output  # neither kedro's --pipeline nor its resolvers' register_new_resolver
    assert not (project_copy / "data").exists() or not any((project_copy / "data").rglob("*.parquet"))


def test_negative_epochs_fail_and_save_no_backbone(project_copy):
    result = _kedro(project_copy, "--pipelines", "pretrain_cf", "--params", "pretrain_cf.training.epochs=-1")
    assert result.returncode != 0
    assert "pretrain_cf.training.epochs: Input should be greater than or equal to 1 (got -1)" in (
        result.stdout + result.stderr
    )
    assert not any(project_copy.rglob("cf_model.safetensors"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.__setitem__("stage_2", {}), r"- stage_2: unknown key \(nearest known: 'stage2'\)"),
        (
            lambda p: p["stage2"]["model"].__setitem__("head_layr", 3),
            r"stage2\.model\.head_layr: unknown key \(nearest known: 'head_layer'\)",
        ),
        (
            lambda p: p["stage2"]["model"].__setitem__("objective", "ranking"),
            r"stage2\.model\.objective: Input should be 'lm', 'listwise' or 'embedding_head' \(got 'ranking'\)",
        ),
        (
            lambda p: p["stage2"]["model"].__setitem__("soft_token_norm", "matc"),
            r"stage2\.model\.soft_token_norm: Input should be 'match'; or Input should be a valid number",
        ),
        (
            lambda p: p["pretrain_cf"]["training"].__setitem__("lr", "1e-4"),
            r"pretrain_cf\.training\.lr: .* YAML reads '1e-4' as text: write 0\.0001",
        ),
        (
            lambda p: p.__setitem__("backbone", "bert4rec"),
            r"backbone: Input should be 'sasrec', 'gru4rec', 'nextitnet' or 'ncf' \(got 'bert4rec'\)",
        ),
        (
            lambda p: p["pretrain_cf"]["training"].__setitem__("loss", "bpr"),
            r"pretrain_cf\.training\.loss: Input should be 'bce' or 'ce' \(got 'bpr'\)",
        ),
        (
            lambda p: p["pretrain_cf"]["training"].__setitem__("lr_schedule", "cosine"),
            r"pretrain_cf\.training\.lr_schedule: unknown key",  # a bench knob, not a pipeline parameter
        ),
        (
            lambda p: p["pretrain_cf"]["evaluation"].__setitem__("full_ranking", "no"),
            r"pretrain_cf\.evaluation\.full_ranking: Input should be a valid boolean \(got 'no'\)",
        ),
        (
            lambda p: p["pretrain_cf"]["training"].__setitem__("epochs", 2.5),
            r"pretrain_cf\.training\.epochs: Input should be a valid integer \(got 2\.5\)",
        ),
        (
            lambda p: p["llms"]["smollm2"].__setitem__("device", "gpu"),
            r"llms\.smollm2\.device: .*'gpu' is not a device",
        ),
        (
            lambda p: p["evaluate_scenarios"]["models"].append("bert4rec"),
            r"evaluate_scenarios\.models\.9: Input should be 'cf', 'popularity'.* \(got 'bert4rec'\)",
        ),
        (
            lambda p: p["evaluate_scenarios"]["models"].append("mlp_llm"),
            r"evaluate_scenarios\.models: .*mlp_llm is trained and scored by `kedro run --pipelines ablations`",
        ),
        (
            lambda p: p["evaluate_scenarios"]["models"].extend(["no_user", "no_gate"]),
            r"evaluate_scenarios\.models: .*no_user, no_gate are trained and scored by `kedro run --pipelines",
        ),
        (
            lambda p: p["stage2"]["model"].__setitem__("gate_max_count", None),
            r"stage2\.model: Value error, gate_text_overlap true needs the count gate",
        ),
        (
            lambda p: p["stage2"]["model"].update(gate_max_count=None, gate_text_overlap=False),
            r"stage2\.model: Value error, gate_text_cosine true needs the count gate",
        ),
        (
            lambda p: p["stage2"]["model"].update(
                gate_max_count=None, gate_text_overlap=False, gate_text_cosine=False
            ),
            r"stage2\.model: Value error, gate_cooccurrence true needs the count gate",
        ),
        (
            lambda p: p["stage2"]["model"].__setitem__("cooccurrence_decay", 0),
            r"stage2\.model\.cooccurrence_decay: Input should be greater than 0",
        ),
        (
            lambda p: p["evaluate_scenarios"]["max_llm_rows_by_scenario"].__setitem__("cold_items", 5),
            r"evaluate_scenarios\.max_llm_rows_by_scenario\.cold_items",
        ),
        (
            lambda p: p["evaluate_scenarios"]["max_llm_rows_by_scenario"].__setitem__("cross_domain", 0),
            r"evaluate_scenarios\.max_llm_rows_by_scenario\.cross_domain: Input should be greater than or equal to 1",
        ),
        (
            lambda p: p.pop("title_encoder"),
            r"title_encoder: missing",
        ),
        (
            lambda p: p["split"]["popularity"].pop("fraction"),
            r"split\.popularity\.fraction: missing",
        ),
        (
            lambda p: p["stage2"]["variants"].__setitem__("mine", {"modl": {}}),
            r"stage2\.variants\.mine\.modl: unknown key \(nearest known: 'model'\)",
        ),
        (
            lambda p: p["stage2"]["variants"].__setitem__("mine", {"model": {"gate_max_count": -1}}),
            r"stage2\.variants\.mine\.model\.gate_max_count: Input should be greater than or equal to 0",
        ),
        (
            lambda p: p["stage2"]["variants"].__setitem__("mine", {"training": {"head_warmup_userz": 5}}),
            r"stage2\.variants\.mine\.training\.head_warmup_userz: unknown key \(nearest known: 'head_warmup_users'\)",
        ),
    ],
)
def test_each_fault_names_its_key(base_params, edit, message):
    params = copy.deepcopy(base_params)
    edit(params)
    with pytest.raises(ConfigError, match=message):
        check_parameters(params)


def test_several_faults_are_all_named_at_once(base_params):
    params = copy.deepcopy(base_params)
    params["seed"] = -1
    params["evaluate_scenarios"]["floors"]["cf_text_weights"] = []
    with pytest.raises(ConfigError) as caught:
        check_parameters(params)
    assert "- seed:" in str(caught.value) and "- evaluate_scenarios.floors.cf_text_weights:" in str(
        caught.value
    )


def test_a_variant_merges_only_the_keys_it_names(base_params):
    merged = merge_variant(base_params["stage2"], "no_gate")
    assert merged["model"]["gate_max_count"] is None
    assert merged["model"]["head_reads"] == base_params["stage2"]["model"]["head_reads"]
    assert merged["training"] == base_params["stage2"]["training"]
    with pytest.raises(ConfigError, match="no stage-2 variant 'nope'"):
        merge_variant(base_params["stage2"], "nope")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize(
    "asked", [("--params", "device=cuda"), ("--env", "gpu")], ids=["params", "gpu_recipe"]
)
def test_a_gpu_this_machine_lacks_stops_the_run_before_its_first_node(project_copy, asked):
    result = _kedro(project_copy, "--pipelines", "pretrain_cf", *asked)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "This run cannot start; nothing was computed" in output
    assert "device: device 'cuda' is asked for, but torch sees 0 CUDA device(s): use auto or cpu" in output
    assert not (project_copy / "data").exists() or not any((project_copy / "data").rglob("*.safetensors"))


def test_training_an_ablation_variant_that_is_not_scored_stops_before_its_first_node(project_copy):
    with (project_copy / "conf/local/parameters.yml").open("a") as file:
        file.write("evaluate_scenarios:\n  ablation_models: [cf, a_llmrec]\n")
    result = _kedro(project_copy, "--pipelines", "ablations_no_user")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "This run cannot start; nothing was computed" in output
    assert "evaluate_scenarios.ablation_models does not list no_user, which this run trains" in output
