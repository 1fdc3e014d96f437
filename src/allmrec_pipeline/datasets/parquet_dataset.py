"""``ParquetDataset``: kedro-datasets' ``pandas.ParquetDataset``, saved atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from kedro.io import DatasetError
from kedro.io.core import get_filepath_str
from kedro_datasets.pandas import ParquetDataset as _KedroParquetDataset

from .atomic import atomic_target


class ParquetDataset(_KedroParquetDataset):
    """``pandas.ParquetDataset`` whose ``save`` writes a temporary file next to the target and then renames it,
    so a run killed while saving leaves no truncated file under the version's name: loading the latest version
    then finds the previous, complete one. Takes the same catalog arguments.

    Example catalog entry::

        interactions:
          type: allmrec_pipeline.datasets.ParquetDataset
          filepath: data/02_intermediate/beauty/interactions.parquet
          versioned: true
    """

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
