"""The ``project:`` artifact location: an experiment's artifacts live beside its tracking database, so a copied or
moved project reads and writes its own, and the MLflow server serves them from wherever it is started."""

import shutil
import urllib.request
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from allmrec_pipeline.project_artifacts import local_location
from tests.conftest import mlflow_server


def _project_with_a_run(root):
    """A project folder whose database holds one run with one text artifact; returns the run's id."""
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment_id = client.create_experiment("allmrec_pipeline", artifact_location="project:mlruns")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_text(run_id, "first", "reports/note.txt")
    client.set_terminated(run_id)
    return run_id


def test_the_location_is_stored_as_written_and_its_files_lie_under_the_project(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    run_id = _project_with_a_run(project)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    assert client.get_experiment_by_name("allmrec_pipeline").artifact_location == "project:mlruns"
    assert client.get_run(run_id).info.artifact_uri == f"project:mlruns/{run_id}/artifacts"
    assert (project / "mlruns" / run_id / "artifacts" / "reports" / "note.txt").read_text() == "first"


def test_a_moved_project_reads_and_writes_its_own_artifacts(tmp_path):
    original, moved = tmp_path / "original", tmp_path / "moved"
    original.mkdir()
    run_id = _project_with_a_run(original)
    shutil.copytree(original, moved)
    shutil.rmtree(original)

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{moved / 'mlflow.db'}")
    assert [a.path for a in client.list_artifacts(run_id, "reports")] == ["reports/note.txt"]
    downloaded = client.download_artifacts(run_id, "reports/note.txt", str(tmp_path))
    assert Path(downloaded).read_text() == "first"
    experiment_id = client.get_experiment_by_name("allmrec_pipeline").experiment_id
    new_run = client.create_run(experiment_id).info.run_id
    client.log_text(new_run, "second", "reports/note.txt")
    assert (moved / "mlruns" / new_run / "artifacts" / "reports" / "note.txt").read_text() == "second"
    assert not original.exists()  # nothing goes back to the old folder


def test_the_server_serves_them_from_its_database_folder_whatever_its_working_directory(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    run_id = _project_with_a_run(project)
    with mlflow_server(project / "mlflow.db", cwd=elsewhere) as uri:
        url = f"{uri}/get-artifact?path=reports/note.txt&run_uuid={run_id}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert answer.read() == b"first"
    assert not (elsewhere / "mlruns").exists()


@pytest.mark.parametrize("uri", ["project:", "project:/abs/mlruns", "project://host/mlruns"])
def test_a_location_that_is_not_relative_is_refused_naming_it(uri):
    with pytest.raises(MlflowException, match="relative to the tracking database"):
        local_location(uri, "sqlite:////tmp/mlflow.db")
