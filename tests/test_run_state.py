"""Honest MLflow run states: a run stopped by SIGINT / SIGTERM ends KILLED; a RUNNING run whose process is gone is marked
KILLED by the next run on the host (a pid reused by another process does not count as the run's)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
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
def test_a_signal_acts_as_before_and_the_active_run_then_ends_killed(tracking, signum, raised):
    run = mlflow.start_run(experiment_id=tracking.create_experiment("signals"))
    handler = KilledOnSignal()
    before = signal.getsignal(signum)
    handler.install()
    with pytest.raises(raised):
        os.kill(os.getpid(), signum)
        signal.sigtimedwait([], 0)  # let the handler run before the block ends
    assert signal.getsignal(signum) == before  # the previous handler is back
    assert handler.interrupted_by == signal.Signals(signum).name
    assert handler.end_interrupted_runs() == [run.info.run_id]
    assert tracking.get_run(run.info.run_id).info.status == "KILLED"
    assert mlflow.active_run() is None
    assert handler.end_interrupted_runs() == []  # once only; without a signal nothing is ended


def test_a_signal_while_the_store_is_locked_still_stops_at_once(tracking, tmp_path):
    """Ctrl-C may land while the interrupted code holds SQLite's write lock (an epoch's metrics being logged): the
    handler must not wait on it. The run ends KILLED once the lock is gone, as it is when the stack unwinds."""
    run = mlflow.start_run(experiment_id=tracking.create_experiment("locked"))
    lock = sqlite3.connect(tmp_path / "mlflow.db", timeout=0)
    lock.execute("BEGIN EXCLUSIVE")  # what an unfinished write transaction of the interrupted code holds
    handler = KilledOnSignal()
    handler.install()
    try:
        with pytest.raises(KeyboardInterrupt):  # not MLflow's "database is locked" after a wait
            os.kill(os.getpid(), signal.SIGINT)
            signal.sigtimedwait([], 0)
    finally:
        lock.rollback()
        lock.close()
    assert tracking.get_run(run.info.run_id).info.status == "RUNNING"
    handler.end_interrupted_runs()
    assert tracking.get_run(run.info.run_id).info.status == "KILLED"


def test_the_next_run_in_the_same_process_ends_an_interrupted_one_before_kedro_mlflow_looks(
    tracking, tmp_path
):
    """In a notebook the process lives on after Ctrl-C: the next session's context ends the interrupted run KILLED
    before any plugin's ``after_context_created`` (kedro-mlflow's would otherwise adopt the still active run);
    plugins register after the project's hooks, so only ``tryfirst`` puts ours ahead."""
    from types import SimpleNamespace

    from kedro.framework.hooks import hook_impl
    from kedro.framework.hooks.manager import _create_hook_manager

    from allmrec_pipeline.hooks import RunTaggingHook

    class Plugin:
        seen: list = []

        @hook_impl
        def after_context_created(self, context) -> None:
            self.seen.append(mlflow.active_run())

    run = mlflow.start_run(experiment_id=tracking.create_experiment("notebook"))
    ours = RunTaggingHook()
    ours.signals.interrupted_by = "SIGINT"  # as the handler leaves it
    manager = _create_hook_manager()
    manager.register(ours)
    manager.register(Plugin())
    manager.hook.after_context_created(context=SimpleNamespace(params={}, project_path=tmp_path))
    assert Plugin.seen == [None]
    assert tracking.get_run(run.info.run_id).info.status == "KILLED"


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
