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
