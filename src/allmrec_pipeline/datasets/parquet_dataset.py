"""``ParquetDataset``: kedro-datasets' ``pandas.ParquetDataset``, saved atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
from kedro.io import DatasetError
from kedro.io.core import get_filepath_str
from kedro_datasets.pandas import ParquetDataset as _KedroParquetDataset

from .atomic import atomic_target
from .versions import ReadableVersionMixin


class ParquetDataset(ReadableVersionMixin, _KedroParquetDataset):
    """``pandas.ParquetDataset`` whose ``save`` writes a temporary file next to the target and then renames it,
    so a run killed while saving leaves no truncated file under the version's name: loading the latest version
    then finds the previous, complete one. Takes the same catalog arguments.

    Example catalog entry::

        interactions:
          type: allmrec_pipeline.datasets.ParquetDataset
          filepath: data/02_intermediate/beauty/interactions.parquet
          versioned: true
    """

    def load(self) -> pd.DataFrame:
        return self._load_readable(self._read, (pa.ArrowInvalid, OSError))

    def _read(self, path: str) -> pd.DataFrame:
        if self._protocol == "file":
            return pd.read_parquet(path, **self._load_args)
        return pd.read_parquet(
            f"{self._protocol}://{path}", storage_options=self._storage_options, **self._load_args
        )

    def save(self, data: pd.DataFrame) -> None:
        target = get_filepath_str(self._get_save_path(), self._protocol)
        if Path(target).is_dir():
            raise DatasetError(f"Saving {self.__class__.__name__} to a directory is not supported.")
        if "partition_cols" in self._save_args:
            raise DatasetError(
                f"{self.__class__.__name__} does not support save argument 'partition_cols'. "
                "Please use 'kedro.io.PartitionedDataset' instead."
            )
        with (
            atomic_target(self._fs, target) as partial,
            self._fs.open(partial, **self._fs_open_args_save) as file,
        ):
            data.to_parquet(file, **self._save_args)
        self._invalidate_cache()
