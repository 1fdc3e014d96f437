"""conf/team: a run sends its parameters, metrics, tags and artifacts to an MLflow tracking server over HTTP (a
real `mlflow server` on 127.0.0.1 with its own sqlite store and artifact folder), not to the project's database."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from tests.conftest import mlflow_server


@pytest.fixture
def tracking_server(tmp_path):
    store = tmp_path / "server"
    store.mkdir()
    with mlflow_server(store / "mlflow.db", "--artifacts-destination", str(store / "artifacts")) as uri:
        yield uri, store


def test_a_team_run_is_tracked_on_the_server(project_copy, tracking_server):
    uri, store = tracking_server
    # the env `team` reads no conf/local: the copy's small-data settings move there, beside its mlflow.yml
    for name in ("catalog.yml", "parameters.yml"):
        shutil.copy(project_copy / "conf/local" / name, project_copy / "conf/team" / name)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "run", "--env", "team", "--pipelines", "ingest_amazon"],
        cwd=project_copy,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("allmrec_pipeline").experiment_id], "tags.pipeline = 'ingest_amazon'"
    )
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "ingest_amazon:beauty/sasrec/smollm2"
    assert run.data.metrics["ingest.final.users"] > 0 and run.data.params["ingest.filters.user_k"] == "3"
    reports = [a.path for a in client.list_artifacts(run.info.run_id, "reports")]
    assert "reports/ingest_report.json" in reports
    assert list((store / "artifacts").rglob("ingest_report.json"))  # stored by the server, not the project
    assert not (project_copy / "mlflow.db").exists()


def test_the_team_env_without_a_server_address_says_which_variable(project_copy):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "run", "--env", "team", "--pipelines", "ingest_amazon"],
        cwd=project_copy,
        env={
            **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
            "KEDRO_DISABLE_TELEMETRY": "1",
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode != 0
    assert "MLFLOW_TRACKING_URI" in result.stdout + result.stderr
