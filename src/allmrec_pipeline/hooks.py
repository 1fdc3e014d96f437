"""Project hooks: tag every MLflow run (dataset, backbone, LLM, commit) and attach the pipelines' reports."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

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


class RunTaggingHook:
    """Adds dataset / backbone / LLM / git-commit tags to the run that kedro-mlflow opened."""

    def __init__(self) -> None:
        self._params: dict[str, Any] = {}
        self._project_path = Path.cwd()
        self._catalog = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._params = context.params
        self._project_path = Path(context.project_path)

    # trylast: kedro-mlflow's own before_pipeline_run must have started the run first.
    @hook_impl(trylast=True)
    def before_pipeline_run(self) -> None:
        if mlflow.active_run() is None:
            logger.warning("No active MLflow run: run tags not set (is kedro-mlflow installed and enabled?)")
            return
        tags = {key: str(self._params[key]) for key in TAGGED_PARAMETERS if key in self._params}
        tags["git_commit"] = git_commit(self._project_path)
        mlflow.set_tags(tags)

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self._catalog = catalog

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        """Persisted reports (``*_report`` catalog entries) also go to the run as artifacts; the in-memory
        report sections that nodes pass to each other do not."""
        if not dataset_name.endswith("_report") or not isinstance(data, dict) or mlflow.active_run() is None:
            return
        dataset = self._catalog.get(dataset_name) if self._catalog is not None else None
        if dataset is not None and not isinstance(dataset, MemoryDataset):
            mlflow.log_dict(data, f"reports/{dataset_name}.json")
