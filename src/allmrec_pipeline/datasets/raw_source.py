"""``RawSourceDataset``: the raw files of one source, by role, checked to exist; readers stream them."""

from __future__ import annotations

from typing import Any

import fsspec
from kedro.io import AbstractDataset, DatasetError


class RawSourceDataset(AbstractDataset[None, dict[str, list[str]]]):
    """Names the raw files of a source by role; loading checks they exist and returns their paths.

    Loading returns the paths; the ``ingest_amazon`` readers check and stream the files, in chunks, so a multi-GB review
    file never has to fit in memory as one object. Which roles are needed depends on the source kind
    (``ingest.source.kind`` in ``parameters_ingest_amazon.yml``).

    Example catalog entry::

        raw_source:
          type: allmrec_pipeline.datasets.RawSourceDataset
          files:
            reviews: data/01_raw/amazon2018/All_Beauty_5.json.gz
            meta: data/01_raw/amazon2018/meta_All_Beauty.json.gz

    A role may list several files (e.g. the 2023 benchmark's train/valid/test CSV splits); they are read in
    order and concatenated.
    """

    def __init__(self, *, files: dict[str, str | list[str]], metadata: dict[str, Any] | None = None) -> None:
        if not isinstance(files, dict) or not files:
            raise DatasetError("RawSourceDataset needs 'files': a mapping of role -> path (or list of paths)")
        self._files = {
            role: [paths] if isinstance(paths, str) else list(paths) for role, paths in files.items()
        }
        self.metadata = metadata

    def load(self) -> dict[str, list[str]]:
        # Existence is checked by the reading node, so that a disabled source (the cross-domain switch)
        # does not need its files.
        return {role: list(paths) for role, paths in self._files.items()}

    def save(self, data: Any) -> None:
        raise DatasetError("RawSourceDataset is read-only: raw files are inputs, never outputs")

    def _exists(self) -> bool:
        return all(file_exists(path) for paths in self._files.values() for path in paths)

    def _describe(self) -> dict[str, Any]:
        return {"files": self._files}


def file_exists(path: str) -> bool:
    """Whether a local or fsspec-remote file exists."""
    filesystem, _, (local_path,) = fsspec.get_fs_token_paths(path)
    return filesystem.exists(local_path)
