"""Honest MLflow run states: a run stopped by SIGINT (Ctrl-C) or SIGTERM ends KILLED, not FINISHED; a run left
RUNNING by a process that no longer exists (SIGKILL, a crash, a lost machine) is marked KILLED by the next run on
the same host.

Every run records where it runs (tags ``host``, ``pid`` and, on Linux, ``pid_start``: the process's start time,
so that a recycled pid is not mistaken for the run's process)."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow

logger = logging.getLogger(__name__)

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or ``None`` elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in parentheses may hold spaces


def process_tags() -> dict[str, str]:
    """The tags that let a later run tell whether this run's process still exists."""
    tags = {"host": socket.gethostname(), "pid": str(os.getpid())}
    start = process_start(os.getpid())
    if start is not None:
        tags["pid_start"] = start
    return tags


def process_gone(tags: dict[str, str]) -> bool:
    """Whether the process a run's tags name has ended (only decidable on the same host; ``False`` otherwise)."""
    if tags.get("host") != socket.gethostname() or not str(tags.get("pid", "")).isdigit():
        return False
    pid = int(tags["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it exists
        pass
    recorded = tags.get("pid_start")
    return recorded is not None and process_start(pid) not in (None, recorded)  # a recycled pid


def mark_stale_runs_killed(experiment_id: str, current_run_id: str | None) -> list[str]:
    """End as KILLED every RUNNING run of the experiment whose process is gone; returns their ids."""
    client = mlflow.MlflowClient()
    stale = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'"):
        if run.info.run_id != current_run_id and process_gone(run.data.tags):
            client.set_terminated(run.info.run_id, status="KILLED")
            stale.append(run.info.run_id)
    if stale:
        logger.warning(
            "Marked %d MLflow run(s) KILLED whose process is gone (killed or crashed; they had stayed RUNNING): %s",
            len(stale),
            ", ".join(stale),
        )
    return stale


class KilledOnSignal:
    """While installed, SIGINT and SIGTERM act as before (SIGINT raises ``KeyboardInterrupt`` or calls the handler
    that was there, SIGTERM exits with status 143), and the MLflow runs still active once the interrupted code has
    unwound end KILLED: at the process's exit, or (in a notebook) when ``end_interrupted_runs`` is called before the
    next run. The handler itself touches no store: the code it interrupts may hold the tracking database's write
    lock (SQLite), and ending the run from inside the handler would wait on that lock. Only the main thread can
    install signal handlers: elsewhere this does nothing."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self.interrupted_by: str | None = None  # the signal's name, until its runs are ended
        self._at_exit = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        # registered after MLflow's own exit handler (which ends a run FINISHED), so it runs before it
        if not self._at_exit:
            atexit.register(self.end_interrupted_runs)
            self._at_exit = True
        for sig in HANDLED_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        previous: Callable | int | None = self._previous.get(signum)
        self.uninstall()
        self.interrupted_by = signal.Signals(signum).name
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    def end_interrupted_runs(self) -> list[str]:
        """After a handled signal, end every active MLflow run KILLED; returns their ids (none without a signal)."""
        if self.interrupted_by is None:
            return []
        ended = []
        while (run := mlflow.active_run()) is not None:  # kedro-mlflow may have entered the same run twice
            mlflow.end_run(status="KILLED")
            ended.append(run.info.run_id)
        if ended:
            logger.warning(
                "%s: ended MLflow run %s as KILLED", self.interrupted_by, ", ".join(dict.fromkeys(ended))
            )
        self.interrupted_by = None
        return ended
