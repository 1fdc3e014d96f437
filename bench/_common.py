"""Helpers shared by the benchmark scripts (run as ``python bench/<name>.py``, so this folder is on sys.path)."""

from __future__ import annotations

import glob
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def latest(pattern: str) -> str:
    """The newest versioned file matching ``pattern`` under the project root, or a clear exit."""
    paths = sorted(glob.glob(str(ROOT / pattern)))
    if not paths:
        raise SystemExit(f"missing {pattern}: run `make run` (or the pipelines it needs) first")
    return paths[-1]
