"""Atomic saves: write next to the target, then rename, so a killed save leaves no truncated file under the
target's name (for a versioned dataset, loading the latest version then finds the previous, complete one)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def atomic_target(fs: Any, target: str) -> Iterator[str]:
    """A temporary path next to ``target`` (on the fsspec filesystem ``fs``) to write to: renamed to ``target``
    when the block ends, removed when it raises."""
    partial = f"{target}.partial-{os.getpid()}"
    try:
        yield partial
        fs.mv(partial, target)
    except BaseException:
        if fs.exists(partial):
            fs.rm(partial)
        raise


class AtomicWriteFileSystem:
    """An fsspec filesystem whose ``open`` in a write mode writes to a temporary path next to the target and
    renames it when the file is closed without an error (``atomic_target``); everything else is the wrapped
    filesystem's."""

    def __init__(self, fs: Any) -> None:
        self._inner = fs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextmanager
    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Iterator[Any]:
        if not any(flag in mode for flag in "wax"):
            with self._inner.open(path, mode, **kwargs) as file:
                yield file
            return
        with atomic_target(self._inner, path) as partial, self._inner.open(partial, mode, **kwargs) as file:
            yield file


class AtomicWritesMixin:
    """For a kedro-datasets dataset that writes through ``self._fs.open``: every file it saves is written to a
    temporary path and renamed into place, so a run killed while saving leaves no truncated file under a
    version's name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fs = AtomicWriteFileSystem(self._fs)
