"""Helpers shared by the benchmark scripts (run as ``python bench/<name>.py``, so this folder is on sys.path)."""

from __future__ import annotations

import glob
from pathlib import Path

from allmrec_pipeline.datasets import SafetensorsDataset
from allmrec_pipeline.models.checkpoint import Checkpoint

ROOT = Path(__file__).resolve().parents[1]


def latest(pattern: str, root: Path = ROOT) -> str:
    """The newest versioned file matching ``pattern`` under ``root`` (the project), or a clear exit."""
    paths = sorted(glob.glob(str(Path(root) / pattern)))
    if not paths:
        raise SystemExit(f"missing {pattern} under {root}: run `make run` (or the pipelines it needs) first")
    return paths[-1]


def read_checkpoint(path: str) -> Checkpoint:
    """A safetensors checkpoint file (a version's file, found with ``latest``), read as the catalog reads it."""
    return SafetensorsDataset(filepath=path).load()
