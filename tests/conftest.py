"""Shared test fixtures: paths to the committed real-data slices, and a throw-away copy of the project."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import mlflow
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_ROOT / "tests" / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the project's config and metadata in ``tmp_path``, with the raw sources pointed at the small
    fixture slices and MLflow at a sqlite file inside the copy. Data outputs land in the copy's ``data/``."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    (root / "src").mkdir()  # the package itself is installed (editable); Kedro only checks the folder exists
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    seq = FIXTURES / "sequence_file"
    (root / "conf" / "local" / "catalog.yml").write_text(
        f"""
raw_source:
  type: allmrec_pipeline.datasets.RawSourceDataset
  files:
    sequences: {seq / "user_sequence.txt"}
    items: {seq / "items_asin_title.tsv"}
cross_domain.raw_source:
  type: allmrec_pipeline.datasets.RawSourceDataset
  files:
    sequences: {seq / "user_sequence.txt"}
    items: {seq / "items_asin_title.tsv"}
"""
    )
    (root / "conf" / "local" / "mlflow.yml").write_text(
        f"server:\n  mlflow_tracking_uri: sqlite:///{root / 'mlflow.db'}\n"
    )
    # The fixture slice is not a 5-core of itself: a looser k-core keeps enough of it.
    (root / "conf" / "local" / "parameters.yml").write_text(
        "ingest:\n  filters:\n    user_k: 3\n    item_k: 2\n"
        "cross_domain:\n  ingest:\n    filters:\n      user_k: 3\n      item_k: 2\n"
        "split:\n  cold_users:\n    n_users: 20\n"
        "evaluate:\n  max_users: 40\n"
    )
    (root / "data").mkdir()
    return root


@pytest.fixture(autouse=True)
def _no_leftover_mlflow_run():
    """A KedroSession leaves its run on MLflow's stack inside one process: end it, or the next one adopts it."""
    yield
    while mlflow.active_run():
        mlflow.end_run()


class KeptMemoryDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so that a test can load intermediate outputs."""

    def _release(self) -> None:
        pass


def run_in_memory(pipeline: Pipeline, catalog: DataCatalog) -> DataCatalog:
    """Run ``pipeline`` with SequentialRunner, keeping every output loadable from ``catalog``."""
    for name in pipeline.all_outputs():
        if name not in catalog:
            catalog[name] = KeptMemoryDataset()
    SequentialRunner().run(pipeline, catalog)
    return catalog
