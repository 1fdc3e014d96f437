"""Project-specific Kedro datasets."""

from .mlflow_metrics import MlflowMetricsDataset
from .parquet_dataset import ParquetDataset
from .raw_source import RawSourceDataset
from .reports import JSONDataset, MatplotlibDataset, TextDataset
from .safetensors_dataset import SafetensorsDataset

__all__ = [
    "JSONDataset",
    "MatplotlibDataset",
    "MlflowMetricsDataset",
    "ParquetDataset",
    "RawSourceDataset",
    "SafetensorsDataset",
    "TextDataset",
]
