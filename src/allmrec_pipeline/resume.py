"""Checkpoints of a training loop in progress, so that an interrupted run resumes where it stopped.

A loop's state (weights, optimizer and scheduler states, random generators, early-stopping figures, curves) is a
nested structure of dicts, lists, numbers, strings and tensors. ``TrainingCheckpoints`` writes it as one
safetensors file (the tensors, plus the structure as JSON metadata: no pickle, so loading runs no code),
atomically (a temporary file, then a rename), under a name keyed by a fingerprint of everything that determines
the result (configs, seed, input tensors). A rerun with the same key finds the file and continues; a rerun with
any other setting or data gets another key and starts afresh. The loop removes its file when it finishes.

Plain PyTorch: nothing here knows Kedro or MLflow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import safetensors
import safetensors.torch
import torch

from allmrec_pipeline import distributed

logger = logging.getLogger(__name__)


def fingerprint(*parts: Any) -> str:
    """A SHA-256 hex digest of ``parts``: JSON-able values by their canonical JSON, tensors and arrays by their
    dtype, shape and bytes, data frames column by column (nested in dicts and lists alike)."""
    digest = hashlib.sha256()

    def visit(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().contiguous()
            digest.update(f"tensor:{value.dtype}:{tuple(value.shape)}:".encode())
            digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
        elif isinstance(value, pd.DataFrame):
            digest.update(f"frame:{list(value.columns)}:{len(value)}:".encode())
            for column in value.columns:
                visit([np.asarray(v) if isinstance(v, list | np.ndarray) else v for v in value[column]])
        elif isinstance(value, np.ndarray):
            digest.update(f"array:{value.dtype}:{value.shape}:".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, dict):
            digest.update(b"{")
            for key in sorted(value, key=str):
                digest.update(json.dumps(str(key)).encode() + b":")
                visit(value[key])
            digest.update(b"}")
        elif isinstance(value, list | tuple):
            digest.update(b"[")
            for item in value:
                visit(item)
                digest.update(b",")
            digest.update(b"]")
        else:
            digest.update(json.dumps(value, sort_keys=True, default=str).encode())

    for part in parts:
        visit(part)
        digest.update(b"|")
    return digest.hexdigest()


def rng_state() -> dict[str, torch.Tensor]:
    """The global torch generator's state (dropout, ``torch.randperm`` without a generator)."""
    return {"torch": torch.get_rng_state()}


def restore_rng(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])


class TrainingCheckpoints:
    """One loop's checkpoint file: ``<directory>/<name>-<key[:16]>.safetensors``.

    Args:
        directory: Where checkpoints live; ``None`` turns checkpointing off (every method is then a no-op).
        name: The loop (``cf_sasrec``, ``stage1``, ``stage2_a_llmrec``): part of the file name.
        key: ``fingerprint(...)`` of everything that determines the loop's result.
    """

    def __init__(self, directory: str | Path | None, name: str, key: str) -> None:
        self.path = None if directory is None else Path(directory) / f"{name}-{key[:16]}.safetensors"

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def load(self) -> dict[str, Any] | None:
        """The saved state, or ``None`` when there is none (or it is unreadable: a WARNING, and a fresh start).

        Under ``torchrun`` every rank reads it, and none goes on until all have (only rank 0 writes)."""
        state = self._read()
        distributed.barrier()
        return state

    def _read(self) -> dict[str, Any] | None:
        if self.path is None or not self.path.is_file():
            return None
        try:
            tensors = safetensors.torch.load_file(str(self.path))
            with safetensors.safe_open(str(self.path), "pt") as handle:
                skeleton = json.loads(handle.metadata()["state"])
            return _decode(skeleton, tensors)
        except (OSError, ValueError, KeyError, TypeError, safetensors.SafetensorError) as exc:
            logger.warning("Checkpoint %s is unreadable (%s): training starts afresh", self.path, exc)
            return None

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically: a run killed while saving leaves the previous checkpoint intact (rank 0
        only, under ``torchrun``)."""
        if self.path is None or not distributed.current().writer:
            return
        tensors: dict[str, torch.Tensor] = {}
        skeleton = _encode(state, tensors)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f"{self.path.name}.partial-{os.getpid()}")
        try:
            safetensors.torch.save_file(tensors, str(partial), metadata={"state": json.dumps(skeleton)})
            os.replace(partial, self.path)
        finally:
            partial.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove the checkpoint (a finished loop leaves none behind; rank 0 only, under ``torchrun``)."""
        if self.path is not None and distributed.current().writer:
            self.path.unlink(missing_ok=True)


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able skeleton of ``value``; its tensors go to ``tensors`` (copied: safetensors refuses shared
    storage), referenced by name."""
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().clone().contiguous()
        return {"__tensor__": name}
    if isinstance(value, dict):
        return {"__dict__": [[key, _encode(item, tensors)] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(item, tensors) for item in value]}
    if isinstance(value, list):
        return [_encode(item, tensors) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a training checkpoint cannot hold a {type(value).__name__}")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(item, tensors) for item in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(_decode(item, tensors) for item in value["__tuple__"])
        return {key: _decode(item, tensors) for key, item in value["__dict__"]}
    return value
