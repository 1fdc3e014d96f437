"""The project as a user drives it: KedroSession runs tracked in MLflow, and kedro-viz's lineage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from safetensors.torch import load_file

from allmrec_pipeline.errors import ConfigError
from tests.conftest import PROJECT_ROOT, free_port

PIPELINES = {"ingest_amazon", "split_sequences", "pretrain_cf", "stage1", "stage2", "evaluate_scenarios"}


def _runs(project: Path) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["allmrec_pipeline"])


def _run(
    project: Path,
    pipeline: str,
    runtime_params: dict | None = None,
    env: str | None = None,
    node_names: list[str] | None = None,
) -> None:
    bootstrap_project(project)
    cwd = Path.cwd()
    os.chdir(project)  # relative catalog paths (data/...) resolve against the working directory
    try:
        with KedroSession.create(project_path=project, runtime_params=runtime_params, env=env) as session:
            session.run(pipeline_name=pipeline, node_names=node_names)
    finally:
        os.chdir(cwd)
        while mlflow.active_run():
            mlflow.end_run()


def test_ingest_run_writes_versioned_parquet_and_one_tracked_run(project_copy):
    _run(project_copy, "ingest_amazon")

    versions = list((project_copy / "data/02_intermediate/beauty/interactions.parquet").iterdir())
    assert len(versions) == 1
    interactions = pd.read_parquet(versions[0] / "interactions.parquet")
    assert len(interactions) > 0
    assert (project_copy / "data/02_intermediate/beauty/cross_domain/video_games/items.parquet").is_dir()

    runs = _runs(project_copy)
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "FINISHED"
    assert (
        run["tags.dataset"] == "beauty" and run["tags.backbone"] == "sasrec" and run["tags.llm"] == "smollm2"
    )
    assert run["tags.git_commit"]
    assert run["tags.run_id"] == versions[0].name  # the MLflow run links to the versioned files
    assert run["params.ingest.source.kind"] == "sequence_file"  # flattened params
    assert run["params.ingest.filters.user_k"] == "3"  # conf/local overrode one key of conf/base
    assert run["params.ingest.filters.rating_operator"] == ">="
    assert run["metrics.ingest.final.interactions"] == len(interactions)
    assert "metrics.cross_domain.ingest.final.interactions" in runs.columns

    # A second run writes a new version next to the first: nothing is overwritten.
    _run(project_copy, "ingest_amazon", {"backbone": "gru4rec"})
    assert len(list((project_copy / "data/02_intermediate/beauty/interactions.parquet").iterdir())) == 2
    assert set(_runs(project_copy)["tags.backbone"]) == {"sasrec", "gru4rec"}


def test_split_run_after_ingest_is_tracked_with_its_report(project_copy):
    _run(project_copy, "ingest_amazon")
    _run(project_copy, "split_sequences")
    data = project_copy / "data"
    for table in (
        "item_index",
        "user_index",
        "sequences",
        "train_sequences",
        "item_popularity",
        "eval_candidates",
    ):
        layer = "03_primary" if table in ("item_index", "user_index", "sequences") else "05_model_input"
        assert len(list((data / layer / "beauty" / f"{table}.parquet").iterdir())) == 1, table
    for table in ("item_index", "sequences"):
        assert (data / "03_primary/beauty/cross_domain/video_games" / f"{table}.parquet").is_dir()
    candidates = pd.read_parquet(next((data / "05_model_input/beauty/eval_candidates.parquet").glob("*/*")))
    assert set(candidates["scenario"]) == {"overall", "cold_item", "warm_item", "cold_user"}
    assert candidates.groupby(["scenario", "split"]).size().max() <= 40  # evaluate.max_users

    run = _runs(project_copy).sort_values("start_time").iloc[-1]
    assert run["status"] == "FINISHED"
    assert run["metrics.split.users.cold_users.held_out"] == 20
    assert run["metrics.split.candidates.rows.overall.test"] == 40
    assert run["params.split.n_candidates"] == "20"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"], "reports")}
    assert "reports/split_report.json" in artifacts
    assert "reports/split_users_report.json" not in artifacts  # in-memory sections are not attached


def test_a_truncated_newest_version_does_not_block_the_next_run(project_copy, caplog):
    _run(project_copy, "ingest_amazon")
    _run(project_copy, "ingest_amazon")
    folder = project_copy / "data/02_intermediate/beauty/interactions.parquet"
    older, newest = sorted(folder.iterdir())
    damaged = newest / "interactions.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])  # a copy cut short, a disk that filled up
    with caplog.at_level("WARNING"):
        _run(project_copy, "split_sequences")
    assert f"{damaged} is unreadable" in caplog.text and older.name in caplog.text
    assert _runs(project_copy).sort_values("start_time").iloc[-1]["status"] == "FINISHED"


def _wait_for_training(project: Path, process: subprocess.Popen, known: set[str]) -> str:
    """The id of the new RUNNING run, once it has logged a first epoch (live metrics)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()[-3000:]
        runs = _runs(project)
        if "metrics.cf.train_loss" in runs.columns:
            new = runs[~runs["run_id"].isin(known) & runs["metrics.cf.train_loss"].notna()]
            if len(new):
                assert new.iloc[0]["status"] == "RUNNING"
                return new.iloc[0]["run_id"]
        time.sleep(1)
    raise AssertionError("no epoch was logged within 300 s")


def test_interrupted_runs_end_killed_in_mlflow(project_copy):
    _run(project_copy, "ingest_amazon")
    _run(project_copy, "split_sequences")
    with (project_copy / "conf/local/parameters.yml").open("a") as file:
        file.write("pretrain_cf:\n  training:\n    epochs: 100000\n    patience: 100000\n")
    command = [str(Path(sys.executable).parent / "kedro"), "run", "--pipelines", "pretrain_cf"]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, cwd=project_copy, env=env, stderr=subprocess.PIPE, text=True)

    # Ctrl-C while an epoch trains: the run ends KILLED (not FINISHED), with the epochs it finished logged
    known = set(_runs(project_copy)["run_id"])
    process = start()
    interrupted = _wait_for_training(project_copy, process, known)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) != 0
    run = mlflow.MlflowClient().get_run(interrupted)
    assert run.info.status == "KILLED"
    assert run.data.tags["host"] and run.data.tags["pid"] == str(process.pid)

    # SIGKILL leaves no chance to say anything: the run stays RUNNING until the next run on this host sees that
    # its process is gone and marks it KILLED
    known.add(interrupted)
    process = start()
    killed = _wait_for_training(project_copy, process, known)
    process.kill()
    process.wait(timeout=60)
    assert mlflow.MlflowClient().get_run(killed).info.status == "RUNNING"
    _run(project_copy, "split_sequences")
    assert mlflow.MlflowClient().get_run(killed).info.status == "KILLED"
    assert _runs(project_copy).sort_values("start_time").iloc[-1]["status"] == "FINISHED"


def test_pretrain_cf_runs_once_per_backbone_with_identical_metric_keys(project_copy):
    with (project_copy / "conf/local/parameters.yml").open("a") as file:
        file.write("pretrain_cf:\n  training:\n    epochs: 2\n  evaluation:\n    bootstrap_resamples: 100\n")
    _run(project_copy, "ingest_amazon")
    _run(project_copy, "split_sequences")
    _run(project_copy, "pretrain_cf")
    _run(project_copy, "pretrain_cf", {"backbone": "nextitnet"})

    models = project_copy / "data/06_models/beauty"
    for backbone in ("sasrec", "nextitnet"):  # one folder per backbone: nothing overwritten
        assert len(list((models / backbone / "cf_model.safetensors").iterdir())) == 1
    runs = _runs(project_copy)
    runs = runs[
        runs["tags.mlflow.runName"].str.contains("pretrain_cf") | runs["metrics.cf.best_epoch"].notna()
    ]
    assert sorted(runs["tags.backbone"]) == ["nextitnet", "sasrec"]
    keys = [
        {c for c in runs.columns if c.startswith("metrics.cf.") and pd.notna(row[c])}
        for _, row in runs.iterrows()
    ]
    assert keys[0] == keys[1] and "metrics.cf.test.cold_item.hit_at_1_ci_low" in keys[0]
    client = mlflow.MlflowClient()
    # the documented filter selects exactly the backbone runs, named after what differs
    selected = mlflow.search_runs(
        experiment_names=["allmrec_pipeline"], filter_string="tags.pipeline = 'pretrain_cf'"
    )
    assert sorted(selected["tags.mlflow.runName"]) == [
        "pretrain_cf:beauty/nextitnet/smollm2",
        "pretrain_cf:beauty/sasrec/smollm2",
    ]
    assert len(_runs(project_copy)) == 4  # ingest and split are runs too, left out by the filter
    experiment = client.get_experiment_by_name("allmrec_pipeline")
    assert (
        experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    )  # the UI opens the runs table
    # stored relative to the project (the tracking database's folder), so a copied project keeps its own
    assert experiment.artifact_location == "project:mlruns"
    for _, run in runs.iterrows():
        own = {c for c in runs.columns if c.startswith("params.") and pd.notna(run[c])}
        assert "params.cf_backbone_config.hidden_size" in own
        assert not any(c.startswith("params.pretrain_cf.models") for c in own)  # no other backbone's settings
        history = client.get_metric_history(run["run_id"], "cf.train_loss")
        assert sorted(m.step for m in history) == [1, 2]  # one point per epoch, from epoch 1
        assert [a.path for a in client.list_artifacts(run["run_id"], "models/cf_model")] == [
            "models/cf_model/cf_model.safetensors"
        ]
        assert (
            project_copy / "mlruns" / run["run_id"] / "artifacts/models/cf_model/cf_model.safetensors"
        ).is_file()
        assert "reports/cf_report.json" in {a.path for a in client.list_artifacts(run["run_id"], "reports")}


def _tiny_llm_dir(root: Path) -> Path:
    """A tiny random Llama and its word-level tokenizer saved as a local model directory (no download)."""
    from tests.llm.tiny import tiny_llm, tiny_tokenizer

    folder = root / "tiny_llm"
    tiny_llm("llama").save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def tiny_settings(
    llm_dir: Path,
    stage2_training: str = "",
    evaluate: str = (
        "  max_llm_rows: 10\n  ablation_max_llm_rows: 8\n  max_llm_rows_by_scenario:\n    cross_domain: 6\n"
    ),
) -> str:
    """conf/local parameters that make the chain small: two CF epochs, one SBERT layer, the tiny LLM (``llm=tiny``)
    read to its first layer, 16 stage-2 users; extra ``stage2.training`` and ``evaluate_scenarios`` lines."""
    return (
        "pretrain_cf:\n  training:\n    epochs: 2\n  evaluation:\n    bootstrap_resamples: 100\n"
        "stage1:\n  sbert:\n    trainable_layers: 1\n  training:\n    max_examples: 64\n    recall_sample: 50\n"
        "    frozen_text_epochs: 1\n"
        f"llms:\n  tiny:\n    model: {llm_dir}\n    gguf_file: null\n    revision: null\n    dtype: float32\n"
        "    device: cpu\n"
        "stage2:\n  model:\n    head_layer: 1\n  training:\n    max_train_users: 16\n    max_valid_rows: 8\n"
        "    matcher_steps: 20\n"
        f"{stage2_training}evaluate_scenarios:\n{evaluate}  bootstrap_resamples: 100\n"
    )


def test_full_chain_with_a_tiny_llm_then_the_notebook(project_copy):
    llm_dir = _tiny_llm_dir(project_copy)
    tiny = tiny_settings(llm_dir)
    with (project_copy / "conf/local/parameters.yml").open("a") as file:
        file.write(tiny)
    # `make baselines` runs the env `baselines`, which reads no conf/local: the tiny settings go there too
    baselines_file = project_copy / "conf/baselines/parameters.yml"
    shipped = yaml.safe_load(baselines_file.read_text())["evaluate_scenarios"]["models"]
    baselines_file.write_text(
        tiny.replace("evaluate_scenarios:\n", f"evaluate_scenarios:\n  models: [{', '.join(shipped)}]\n")
    )
    _run(project_copy, "__default__", {"llm": "tiny"})

    runs = _runs(project_copy)
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "FINISHED" and run["tags.llm"] == "tiny" and run["tags.llm_model"] == str(llm_dir)
    assert run["tags.llm_dtype"] == "float32" and run["tags.stage2_objective"] == "embedding_head"
    client = mlflow.MlflowClient()
    assert len(client.get_metric_history(run["run_id"], "stage2.step_loss")) == 4  # 16 users / batch 4
    # one point per epoch: the fine-tuning epoch, then the frozen-SBERT one
    assert len(client.get_metric_history(run["run_id"], "stage1.alignment_recall_at_10")) == 2
    # the default run trains only what it scores: mlp_llm is trained and scored by the ablations pipeline
    assert "tags.stage2_mlp_llm_item_source" not in runs.columns
    assert not client.get_metric_history(run["run_id"], "stage2.mlp_llm.step_loss")
    models = (
        "cf",
        "popularity",
        "text_overlap",
        "text_cosine",
        "cf_text",
        "text_matcher",
        "cooccurrence",
        "cf_text_gate",
        "a_llmrec",
    )
    baselines = ("llm_only", "a_llmrec_sbert")  # the paper's LLM baselines without training: `make baselines`
    assert not any(f"metrics.eval.{m}.overall.hit_at_1" in runs.columns for m in (*baselines, "mlp_llm"))
    for model in models:
        for scenario in ("overall", "cold_item", "warm_item", "cold_user", "cross_domain"):
            assert f"metrics.eval.{model}.{scenario}.hit_at_1" in runs.columns, (model, scenario)
            assert f"metrics.eval.{model}.{scenario}.hit_at_1_n" in runs.columns, (model, scenario)
            if model != "cf":
                assert f"metrics.eval.{model}.{scenario}.hit_at_1_minus_cf_ci_low" in runs.columns, (
                    model,
                    scenario,
                )
    assert not pd.isna(run["metrics.eval.a_llmrec.overall.ndcg_at_10_minus_best_floor"])
    # the evaluation's own prefix: pretrain_cf's cf.test.* and the evaluation's eval.cf.* cannot be confused
    assert not any(c.startswith(("metrics.cf.overall", "metrics.a_llmrec.")) for c in runs.columns)
    assert 0 <= run["metrics.eval.cf_text.weight"] <= 3
    # the LLM-free gate: chosen on validation rows of three scenarios among the points that weigh the head 0
    assert run["metrics.eval.cf_text_gate.rows_cold_item"] > 0
    results = {a.path for a in client.list_artifacts(run["run_id"], "results")}
    assert {
        "results/predictions.parquet",
        "results/scenario_metrics.parquet",
        "results/results.md",
        "results/paired_differences.parquet",
        "results/cf_text_weight.json",
        "results/cf_text_gate.json",
    } <= results
    assert "results/plots/overall.png" in {
        a.path for a in client.list_artifacts(run["run_id"], "results/plots")
    }
    report = project_copy / "data/08_reporting/beauty/sasrec/tiny/results.md"
    markdown = next(report.glob("*/results.md")).read_text()
    assert "| a_llmrec |" in markdown and "Random floor: Hit@1 = 1/20 = 0.050" in markdown
    assert "| text_overlap |" in markdown and "### Model − cf" in markdown
    _assert_llm_row_caps(project_copy)
    _check_serving(project_copy, run["run_id"])

    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(PROJECT_ROOT / "notebooks/explore_results.ipynb", as_version=4)
    os.environ.update(ALLMREC_PROJECT=str(project_copy), ALLMREC_PARAMS="llm=tiny")
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    finally:
        del os.environ["ALLMREC_PROJECT"], os.environ["ALLMREC_PARAMS"]
    outputs = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in notebook.cells
        for o in c.get("outputs", [])
    )
    assert "Random floor: 1/20" in outputs and "warm - cold" in outputs and "minus cf" in outputs
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images  # loading the project switches no matplotlib backend: the notebook shows its plots
    first = next(c for c in notebook.cells if c.cell_type == "code")
    noise = [o for o in first.get("outputs", []) if o.get("name") == "stderr"]
    assert sum(str(o.get("text", "")).count("\n") for o in noise) <= 2, noise  # the loading is quiet

    # the stage-2 ablations: their own run, after the default chain, on the same rows
    _run(project_copy, "ablations", {"llm": "tiny"})
    runs = _runs(project_copy)
    assert len(runs) == 2
    ablation_run = runs[runs["run_id"] != run["run_id"]].iloc[0]
    ablations = (
        "mlp_llm",
        "tallrec",
        "no_user",
        "random_items",
        "titles_only",
        "no_cf_skip",
        "no_gate",
        "no_overlap_gate",
        "no_cosine_gate",
        "no_cooccurrence_gate",
    )
    _assert_ablation_scores(ablation_run, ("a_llmrec", *ablations))
    assert ablation_run["tags.stage2_titles_only_objective"] == "listwise"
    assert ablation_run["tags.stage2_mlp_llm_item_source"] == "cf"
    assert len(client.get_metric_history(ablation_run["run_id"], "stage2.mlp_llm.step_loss")) == 4
    _assert_costs(project_copy, ablation_run)

    # the paper's LLM baselines: `make baselines`, their own run over the same trained models and rows
    _run(project_copy, "evaluate_scenarios", {"llm": "tiny"}, env="baselines")
    runs = _runs(project_copy)
    assert len(runs) == 3
    baseline_run = runs[~runs["run_id"].isin([run["run_id"], ablation_run["run_id"]])].iloc[0]
    for model in (*models, *baselines):
        for scenario in ("overall", "cold_item", "warm_item", "cold_user", "cross_domain"):
            assert not pd.isna(baseline_run[f"metrics.eval.{model}.{scenario}.hit_at_1"]), (model, scenario)
    assert not pd.isna(baseline_run["metrics.eval.llm_only.overall.hit_at_1_minus_best_floor_ci_low"])

    _assert_one_variant_run(project_copy, set(runs["run_id"]))


def _assert_one_variant_run(project: Path, earlier_runs: set[str]) -> None:
    """``ablations_<variant>`` trains and scores that variant beside the references, in a run and a table
    version of its own."""
    _run(project, "ablations_no_user", {"llm": "tiny"})
    runs = _runs(project)
    assert len(runs) == len(earlier_runs) + 1
    one_run = runs[~runs["run_id"].isin(earlier_runs)].iloc[0]
    for model in ("cf", "a_llmrec", "no_user"):
        assert not pd.isna(one_run[f"metrics.eval.ablation.{model}.overall.hit_at_1"]), model
    assert pd.isna(one_run["metrics.eval.ablation.mlp_llm.overall.hit_at_1"])
    assert not pd.isna(one_run["metrics.eval.ablation.no_user.overall.hit_at_1_minus_a_llmrec"])
    tables = project.glob("data/07_model_output/**/ablation_predictions.parquet/*")
    assert len(list(tables)) == 2  # versioned: the full run's table is kept


def _assert_llm_row_caps(project: Path) -> None:
    """The LLM-based models scored ``max_llm_rows`` (10 in the tiny settings) of each scenario, ``cross_domain``
    its own tighter cap (6), the others every frozen row; the paired differences on the rows both scored."""
    metrics = _table(project, "data/08_reporting/beauty/sasrec/tiny/scenario_metrics.parquet")
    assert set(metrics.columns) == {"model", "scenario", "metric", "value", "ci_low", "ci_high", "n"}
    llm_rows = metrics["model"].isin(["llm_only", "a_llmrec", "a_llmrec_sbert", "mlp_llm"])
    cross = metrics["scenario"] == "cross_domain"
    assert (metrics.loc[llm_rows & ~cross, "n"] == 10).all()  # max_llm_rows
    assert (metrics.loc[llm_rows & cross, "n"] == 6).all() and (llm_rows & cross).any()  # its own cap
    assert (metrics.loc[~llm_rows, "n"] > 10).all()  # every frozen row (evaluate.max_users: 40)
    paired = _table(project, "data/08_reporting/beauty/sasrec/tiny/paired_differences.parquet")
    a_llmrec, paired_cross = paired["model"] == "a_llmrec", paired["scenario"] == "cross_domain"
    assert (paired.loc[a_llmrec & ~paired_cross, "n"] == 10).all()
    assert (paired.loc[a_llmrec & paired_cross, "n"] == 6).all() and (a_llmrec & paired_cross).any()


def _assert_ablation_scores(ablation_run: pd.Series, models: tuple[str, ...]) -> None:
    """Every LLM-based model of the ablation run scored, on the run's own cap of LLM rows
    (``ablation_max_llm_rows: 8`` in the tiny settings), beside ``cf`` on every frozen row."""
    for model in models:
        assert not pd.isna(ablation_run[f"metrics.eval.ablation.{model}.overall.hit_at_1"]), model
        assert not pd.isna(ablation_run[f"metrics.eval.ablation.{model}.overall.hit_at_1_minus_cf"]), model
        assert not pd.isna(ablation_run[f"metrics.eval.ablation.{model}.cold_item.hit_at_1"]), model
        assert ablation_run[f"metrics.eval.ablation.{model}.overall.hit_at_1_n"] == 8, model
    assert ablation_run["metrics.eval.ablation.cf.overall.hit_at_1_n"] > 10


def _assert_costs(project: Path, ablation_run: pd.Series) -> None:
    """The trained baselines' cost figures (docs/evaluation.md, "What the models cost") are in the ablations'
    MLflow run, and TALLRec's checkpoint is its LoRA adapters and nothing else."""
    for variant in ("mlp_llm", "tallrec"):
        assert ablation_run[f"metrics.stage2.{variant}.seconds"] > 0, variant
        assert ablation_run[f"metrics.stage2.{variant}.peak_memory_gb"] > 0, variant
        assert ablation_run[f"metrics.eval.ablation.{variant}.inference_seconds_per_row"] > 0, variant
    files = (project / "data/06_models").rglob("tallrec/stage2_projectors.safetensors/*/*")
    tallrec = load_file(next(files))
    assert tallrec and all(k.startswith("lora.") for k in tallrec)
    trained = ablation_run["metrics.stage2.tallrec.trainable_parameters"]
    assert sum(t.numel() for t in tallrec.values()) == trained > 0


def _table(project: Path, path: str) -> pd.DataFrame:
    return pd.read_parquet(next((project / path).glob("*/*")))


def _check_serving(project: Path, run_id: str) -> None:
    """The default run logged and registered the recommender; loaded back, it ranks a frozen evaluation row as
    evaluate_scenarios did, and answers bad requests with their fault; served over HTTP, it answers too."""
    client = mlflow.MlflowClient()
    report = json.loads(
        next(
            (project / "data/08_reporting/beauty/sasrec/tiny").glob("register_model_report.json/*/*")
        ).read_text()
    )
    version = client.get_model_version("allmrec-beauty", report["version"])
    assert version.run_id == run_id and "a_llmrec - cf (overall, hit_at_1)" in version.tags["gate"]
    aliases = client.get_registered_model("allmrec-beauty").aliases
    assert ("champion" in aliases) == report["champion"] == report["gate"]["passed"]
    assert not any(
        a.path.endswith(".gguf") for a in client.list_artifacts(run_id, "recommender/artifacts/bundle")
    )
    model = mlflow.pyfunc.load_model("models:/allmrec-beauty/" + report["version"])

    # the same row as evaluate_scenarios: the same scores for the same candidates
    ids = _table(project, "data/03_primary/beauty/item_index.parquet").set_index("item_idx")["item_id"]
    predictions = _table(project, "data/07_model_output/beauty/sasrec/tiny/predictions.parquet")
    row = predictions[(predictions["model"] == "a_llmrec") & (predictions["scenario"] == "overall")].iloc[0]
    rows = _table(project, "data/05_model_input/beauty/eval_candidates.parquet")
    tests = rows[(rows["scenario"] == "overall") & (rows["split"] == "test")].reset_index(drop=True)
    frozen = tests.iloc[int(row["row"])]  # `row`: the row's position among the scenario's test rows
    assert frozen["user_idx"] == row["user_idx"]
    request = {
        "history": [ids[i] for i in frozen["history"]],
        "candidates": [ids[i] for i in row["candidates"]],
        "k": 20,
    }
    answer = model.predict(pd.DataFrame([request]))[0]
    assert answer["model"] == "a_llmrec" and answer["unknown_ids"] == []
    expected = dict(zip([ids[i] for i in row["candidates"]], row["scores"], strict=True))
    served = dict(zip(answer["item_ids"], answer["scores"], strict=True))
    assert served.keys() == expected.keys()
    assert all(abs(served[i] - expected[i]) < 1e-4 for i in expected)
    assert answer["scores"] == sorted(answer["scores"], reverse=True)

    # retrieval then re-ranking, unknown ids, an empty history, a batch
    answers = model.predict(
        pd.DataFrame(
            [
                {"history": request["history"], "k": 3, "candidates": None},
                {"history": ["no-such-item", request["history"][0]], "k": 2, "candidates": None},
                {"history": [], "k": 4, "candidates": None},
            ]
        )
    )
    assert len(answers[0]["item_ids"]) == 3 and not set(answers[0]["item_ids"]) & set(request["history"])
    assert answers[1]["unknown_ids"] == ["no-such-item"] and answers[1]["model"] == "a_llmrec"
    assert answers[2]["model"].startswith("popularity") and len(answers[2]["item_ids"]) == 4
    with pytest.raises(mlflow.exceptions.MlflowException, match="'k' must be a whole number"):
        model.predict(pd.DataFrame([{"history": request["history"], "k": 0, "candidates": None}]))

    # the real server: `make serve`'s command, on a free port, stopped by the test
    import urllib.error
    import urllib.request

    port = free_port()
    venv_bin = str(Path(sys.executable).parent)  # the server runs uvicorn from the project's environment
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
    }
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        "models:/allmrec-beauty/" + report["version"],
    ]
    server = subprocess.Popen(
        [*command, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )

    def post(body: bytes) -> tuple[int, dict]:
        call = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(call, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the model server did not start within 180 s"
                time.sleep(1)
        records = {
            "dataframe_records": [
                {"history": request["history"], "k": 2},
                {"history": [], "k": 1},
                {"history": ["no-such-item", *request["history"]], "k": 2},
            ]
        }
        status, body = post(json.dumps(records).encode())
        assert status == 200 and len(body["predictions"]) == 3
        assert body["predictions"][2]["unknown_ids"] == ["no-such-item"]
        assert len(body["predictions"][0]["item_ids"]) == 2 and body["predictions"][1]["model"].startswith(
            "popularity"
        )
        status, body = post(b"{not json")
        assert 400 <= status < 500 and body.get("message")
        status, body = post(json.dumps({"dataframe_records": [{"history": "B00X", "k": 2}]}).encode())
        assert 400 <= status < 500 and "history" in body.get("message", "")
        status, body = post(json.dumps({"dataframe_records": [{"history": ["x"], "k": "ten"}]}).encode())
        assert 400 <= status < 500 and "k" in body.get("message", "")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_failing_run_ends_failed(project_copy):
    # the schema stops a bad value before any run starts: nothing is tracked, nothing computed
    with pytest.raises(ConfigError, match=r"ingest\.source\.kind: Input should be 'amazon2018'"):
        _run(project_copy, "ingest_amazon", {"ingest": {"source": {"kind": "nope"}}})
    assert _runs(project_copy).empty
    # a valid setting that this data cannot serve fails in its node: the run ends FAILED
    with pytest.raises(ConfigError, match="rating_threshold is set but this source has no ratings"):
        _run(project_copy, "ingest_amazon", {"ingest": {"filters": {"rating_threshold": 4.0}}})
    runs = _runs(project_copy)
    assert runs["status"].tolist() == ["FAILED"]


def test_viz_build_lists_all_six_pipelines_with_layers_in_a_line(project_copy):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "viz", "build"],
        cwd=project_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    main = json.loads((project_copy / "build/api/main").read_text())
    assert {pipeline["id"] for pipeline in main["pipelines"]} >= PIPELINES
    names = {node["name"] for node in main["nodes"]}
    assert {"read_raw_source", "filter_interactions"} <= names
    # kedro-viz's own layer sort: the whole chain's layers form the data-engineering line (a cycle among them
    # would leave the list empty, and kedro-viz would draw no layer bands); every pipeline's view has its layers
    line = ["raw", "intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting"]
    # (the copy's conf/local redefines the raw sources without their layer: `raw` is absent here)
    assert main["layers"] == [layer for layer in line if layer != "raw"]
    for pipeline in main["pipelines"]:
        layers = json.loads((project_copy / "build/api/pipelines" / pipeline["id"]).read_text())["layers"]
        assert sorted(layers) == sorted(main["layers"]), pipeline["id"]


def test_make_viz_stops_every_process_it_started_on_sigterm(project_copy):
    import urllib.request

    port = free_port()
    kedro = str(Path(sys.executable).parent / "kedro")
    script = str(PROJECT_ROOT / "scripts/stop_group.sh")
    server = subprocess.Popen(
        [script, kedro, "viz", "run", "--port", str(port), "--no-browser"],
        cwd=project_copy,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        assert server.poll() is None and time.monotonic() < deadline, "kedro viz did not start"
        try:
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            time.sleep(1)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    time.sleep(2)
    with pytest.raises(
        OSError
    ):  # nothing serves the port any more (kedro viz's own child outlives a bare SIGTERM)
        urllib.request.urlopen(url, timeout=5).close()


def test_ablation_nodes_run_only_in_the_ablations_pipeline():
    from allmrec_pipeline.pipeline_registry import register_pipelines
    from allmrec_pipeline.variants import ABLATION_RUN_MODELS, ABLATION_RUN_VARIANTS

    bootstrap_project(PROJECT_ROOT)
    pipelines = register_pipelines()
    ablation_nodes = {
        "train_projectors_mlp_llm",
        "train_projectors_tallrec",
        "train_projectors_no_user",
        "train_projectors_random_items",
        "train_projectors_titles_only",
        "train_projectors_no_cf_skip",
        "train_projectors_no_gate",
        "train_projectors_no_overlap_gate",
        "train_projectors_no_cosine_gate",
        "train_projectors_no_cooccurrence_gate",
        *(f"ablation_evaluate_{m}" for m in ABLATION_RUN_MODELS),
        "ablation_collect_predictions",
        "summarize_ablations",
        "compare_ablations",
    }
    assert {n.name for n in pipelines["ablations"].nodes} == ablation_nodes
    for name, pipeline in pipelines.items():
        if not name.startswith("ablations"):
            assert not ablation_nodes & {n.name for n in pipeline.nodes}, name
    # one variant a run: its training, and its scores beside the models that are no variant
    one = {n.name for n in pipelines["ablations_no_gate"].nodes}
    assert one == ablation_nodes - {
        f"{kind}_{v}"
        for v in ABLATION_RUN_VARIANTS
        if v != "no_gate"
        for kind in ("train_projectors", "ablation_evaluate")
    }
    assert {n for n in pipelines if n.startswith("ablations_")} == {
        f"ablations_{v}" for v in ABLATION_RUN_VARIANTS
    }
    assert {"encode_item_titles", "train_projectors"} <= {n.name for n in pipelines["stage2"].nodes}


def test_dotted_dataset_names_stay_inside_their_namespace():
    """Kedro reserves ``a.b`` names for namespaced datasets and warns on every run when a node outside namespace
    ``a`` reads or writes one; shared cross-domain tables are named ``cross_domain_<name>`` instead."""
    from allmrec_pipeline.pipeline_registry import register_pipelines

    bootstrap_project(PROJECT_ROOT)
    default = register_pipelines()["__default__"]
    outside = [
        (node.name, dataset)
        for node in default.nodes
        for dataset in (*node.inputs, *node.outputs)
        if "." in dataset
        and not dataset.startswith("params:")
        and dataset.split(".")[0] != (node.namespace or "").split(".")[0]
    ]
    assert outside == []
    assert {"cross_domain_items", "cross_domain_eval_candidates"} <= set(default.datasets())


def test_a_bare_kedro_command_sends_no_telemetry(project_copy):
    """The shipped `.telemetry` (consent: false) is the opt-out: without it, kedro-telemetry writes a project_id
    into pyproject.toml and sends data, even when no `make` target set KEDRO_DISABLE_TELEMETRY."""
    shutil.copy(PROJECT_ROOT / ".telemetry", project_copy)
    before = (project_copy / "pyproject.toml").read_text()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "registry", "list"],
        cwd=project_copy,
        env={k: v for k, v in os.environ.items() if k not in ("KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK")},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (project_copy / "pyproject.toml").read_text() == before
    assert "Heap" not in result.stdout + result.stderr  # no attempt to send
