"""Shared test fixtures: paths to the committed real-data slices, and a throw-away copy of the project."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
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


SPLIT_PARAMS = {
    "min_interactions": 3,
    "max_seq_len": 50,
    "n_candidates": 20,
    "train_users_limit": None,
    "popularity": {"rule": "rank", "fraction": 0.35},
    "cold_users": {"n_users": 30},
}


@pytest.fixture(scope="session")
def beauty():
    """Canonical interactions and items of the committed real Beauty slice (no k-core)."""
    from allmrec_pipeline.pipelines.ingest_amazon.nodes import (
        clean_items,
        filter_interactions,
        read_raw_source,
    )

    seq = FIXTURES / "sequence_file"
    files = {"sequences": [str(seq / "user_sequence.txt")], "items": [str(seq / "items_asin_title.tsv")]}
    interactions, raw_items, _ = read_raw_source(files, {"kind": "sequence_file"})
    items, _ = clean_items(raw_items, {})
    interactions, items, _ = filter_interactions(
        interactions, items, {"user_k": 1, "item_k": 1, "max_unknown_item_fraction": 0.05}
    )
    return interactions, items


def split_catalog(
    beauty, split=SPLIT_PARAMS, evaluate=None, cross_enabled=True, seed=7, cross=None
) -> DataCatalog:
    """Run split_sequences in memory on the Beauty slice; every output stays loadable."""
    from allmrec_pipeline.pipelines.split_sequences import create_pipeline

    interactions, items = beauty
    cross_interactions, cross_items = cross or (interactions.head(600), items)
    catalog = DataCatalog(
        {
            "interactions": MemoryDataset(interactions),
            "items": MemoryDataset(items),
            "cross_domain_interactions": MemoryDataset(cross_interactions),
            "cross_domain_items": MemoryDataset(cross_items),
        }
    )
    catalog["params:split"] = split
    catalog["params:evaluate"] = evaluate or {"max_users": None}
    catalog["params:seed"] = seed
    catalog["params:cross_domain_enabled"] = cross_enabled
    return run_in_memory(create_pipeline(), catalog)


@pytest.fixture(scope="session")
def split_tables(beauty) -> dict:
    """split_sequences' outputs on the Beauty slice (evaluation capped at 40 rows per scenario and split)."""
    catalog = split_catalog(beauty, evaluate={"max_users": 40})
    names = (
        "item_index",
        "train_sequences",
        "eval_candidates",
        "items",
        "cross_domain_item_index",
        "cross_domain_sequences",
        "cross_domain_eval_candidates",
        "cross_domain_items",
        "sequences",
        "item_popularity",
    )
    return {name: catalog.load(name) for name in names}


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts).

    Drawn from 20000-49151, not the kernel's ephemeral range: kedro-viz refuses any port above 49151.
    """
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, 49151)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1 in 20000-49151 after 200 tries")


@contextmanager
def mlflow_server(backend_store: Path, *options: str, cwd: Path | None = None) -> Iterator[str]:
    """A real ``mlflow server`` on a free 127.0.0.1 port over the sqlite database ``backend_store``, started in
    ``cwd``; yields its address once ``/health`` answers, and stops it with every worker it started."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{backend_store}",
        ]
        + list(options)
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # stop the server and the workers it starts together
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, "mlflow server exited"
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not answer within 60 s")
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def run_in_memory(pipeline: Pipeline, catalog: DataCatalog) -> DataCatalog:
    """Run ``pipeline`` with SequentialRunner, keeping every output loadable from ``catalog``."""
    for name in pipeline.all_outputs():
        if name not in catalog:
            catalog[name] = KeptMemoryDataset()
    SequentialRunner().run(pipeline, catalog)
    return catalog
