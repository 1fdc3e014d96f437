"""Progress for long loops: a tqdm bar on a terminal; elsewhere (a log file, CI, a pipe) no bar, but an INFO log
line at most every ``LOG_EVERY_S`` seconds and one when the loop ends, so that a captured log holds progress,
not thousands of redraws."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm

from allmrec_pipeline import distributed

logger = logging.getLogger(__name__)

LOG_EVERY_S = 60.0


def progress_bar(
    iterable: Iterable | None = None,
    *,
    desc: str | None,
    unit: str = "it",
    total: int | None = None,
    initial: int = 0,
    disable: bool = False,
) -> Any:
    """A progress reporter over ``iterable`` (or updated by hand with ``update``): tqdm when stderr is a terminal,
    a ``LoggedProgress`` otherwise; ``disable`` silences both, as does any rank but 0 under ``torchrun`` (every rank
    runs the same loop). ``set_postfix`` takes tqdm's arguments."""
    disable = disable or not distributed.current().writer
    if not disable and not _terminal():
        return LoggedProgress(iterable, desc=desc, unit=unit, total=total, initial=initial)
    return tqdm(iterable, desc=desc, unit=unit, total=total, initial=initial, disable=disable)


def _terminal() -> bool:
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


class LoggedProgress:
    """tqdm's interface (iteration, ``update``, ``set_postfix``, ``close``, ``with``) reported as log lines:
    ``<desc>: <n>/<total> <unit> (<pct>%, <elapsed> s) <postfix>``."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        desc: str,
        unit: str = "it",
        total: int | None = None,
        initial: int = 0,
        every_s: float = LOG_EVERY_S,
    ) -> None:
        self.iterable, self.desc, self.unit, self.n = iterable, desc, unit, initial
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.every_s, self.postfix, self.closed = every_s, "", False
        self._start = self._last = time.monotonic()

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> LoggedProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.total or 0

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.every_s:
            self._log()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **values: Any) -> None:
        values = {**(ordered_dict or {}), **values}
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._log()

    def _log(self) -> None:
        self._last = time.monotonic()
        share = f", {100 * self.n / self.total:.0f}%" if self.total else ""
        where = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        postfix = f" {self.postfix}" if self.postfix else ""
        logger.info(
            "%s: %s %s (%.0f s%s)%s", self.desc, where, self.unit, self._last - self._start, share, postfix
        )
