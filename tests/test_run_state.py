"""Honest MLflow run states: SIGINT / SIGTERM end the run KILLED; a RUNNING run whose process is gone is marked
KILLED by the next run on the host (a pid reused by another process does not count as the run's)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import mlflow
import pytest

from allmrec_pipeline.run_state import KilledOnSignal, mark_stale_runs_killed, process_gone, process_tags


@pytest.fixture
def tracking(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield mlflow.MlflowClient()
    while mlflow.active_run():
        mlflow.end_run()


@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)]
)
def test_a_signal_ends_the_active_run_killed_and_then_acts_as_before(tracking, signum, raised):
    run = mlflow.start_run(experiment_id=tracking.create_experiment("signals"))
    handler = KilledOnSignal()
    before = signal.getsignal(signum)
    handler.install()
    with pytest.raises(raised):
        os.kill(os.getpid(), signum)
        signal.sigtimedwait([], 0)  # let the handler run before the block ends
    assert tracking.get_run(run.info.run_id).info.status == "KILLED"
    assert mlflow.active_run() is None
    assert signal.getsignal(signum) == before  # the previous handler is back


def test_only_runs_of_gone_processes_on_this_host_are_marked_killed(tracking):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    dead_pid = dead.stdout.decode().strip()
    experiment = tracking.create_experiment("e")
    here = socket.gethostname()
    runs = {
        "dead": {"host": here, "pid": dead_pid},
        "alive": process_tags(),  # this very process
        "recycled": {**process_tags(), "pid_start": "1"},  # this pid, but a process started at another time
        "elsewhere": {"host": f"not-{here}", "pid": dead_pid},  # cannot be checked from here: left alone
        "untagged": {},
    }
    ids = {name: tracking.create_run(experiment, tags=tags).info.run_id for name, tags in runs.items()}
    assert process_gone(runs["dead"]) and not process_gone(runs["alive"])
    killed = mark_stale_runs_killed(experiment, current_run_id=None)
    assert sorted(killed) == sorted([ids["dead"], ids["recycled"]])
    status = {name: tracking.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {
        "dead": "KILLED",
        "alive": "RUNNING",
        "recycled": "KILLED",
        "elsewhere": "RUNNING",
        "untagged": "RUNNING",
    }


def test_an_artifact_location_outside_the_project_is_noticed(tmp_path):
    from allmrec_pipeline.hooks import outside_project

    project = tmp_path / "project"
    assert not outside_project(str(project / "mlruns" / "1"), project)
    assert not outside_project(f"file://{project}/mlruns/1", project)
    assert outside_project(f"file://{tmp_path}/elsewhere/mlruns/1", project)  # a copied project's old folder
    assert not outside_project("s3://bucket/mlruns/1", project)
