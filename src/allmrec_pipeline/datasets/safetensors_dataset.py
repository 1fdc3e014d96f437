"""``SafetensorsDataset``: model weights plus string metadata in one versioned ``.safetensors`` file."""

from __future__ import annotations

import json
import struct
from pathlib import PurePosixPath
from typing import Any

import fsspec
import safetensors.torch
from kedro.io import DatasetError
from kedro.io.core import AbstractVersionedDataset, Version, get_filepath_str, get_protocol_and_path

from allmrec_pipeline.models.checkpoint import Checkpoint

from .atomic import atomic_target
from .versions import ReadableVersionMixin


class _Unreadable(Exception):
    """The bytes of a file are not a safetensors file."""


class SafetensorsDataset(ReadableVersionMixin, AbstractVersionedDataset[Checkpoint, Checkpoint]):
    """Saves and loads a ``Checkpoint(tensors, metadata)``: a state dict and the string metadata that rebuilds
    its model (name, sizes, config). Never pickles code, so loading is safe. With ``metadata: {mlflow_artifact:
    <folder>}`` the project hook attaches the saved file to the active MLflow run.

    Example catalog entry::

        cf_model:
          type: allmrec_pipeline.datasets.SafetensorsDataset
          filepath: data/06_models/beauty/sasrec/cf_model.safetensors
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(fs_args or {}))
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def load(self) -> Checkpoint:
        """The load version's checkpoint; past an unreadable newest version to the newest readable one."""
        return self._load_readable(self._read, (_Unreadable,))

    def _read(self, path: str) -> Checkpoint:
        with self._fs.open(get_filepath_str(PurePosixPath(path), self._protocol), "rb") as file:
            raw = file.read()
        try:
            (header_len,) = struct.unpack("<Q", raw[:8])
            header = json.loads(raw[8 : 8 + header_len])
            tensors = safetensors.torch.load(raw)
        except (struct.error, ValueError, safetensors.SafetensorError) as exc:
            raise _Unreadable(f"not a readable safetensors file: {exc}") from exc
        return Checkpoint(tensors, header.get("__metadata__", {}))

    def save(self, data: Checkpoint) -> None:
        """Write to a temporary file next to the target, then rename it: a run killed while saving leaves no
        truncated file under the version's name (loading the latest version then finds the previous one)."""
        tensors, metadata = data
        path = get_filepath_str(self._get_save_path(), self._protocol)
        self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        payload = safetensors.torch.save(tensors, metadata={k: str(v) for k, v in metadata.items()})
        with atomic_target(self._fs, path) as partial, self._fs.open(partial, "wb") as file:
            file.write(payload)

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(path)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}
