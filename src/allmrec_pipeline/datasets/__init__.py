"""Project-specific Kedro datasets."""

from .mlflow_metrics import MlflowMetricsDataset
from .raw_source import RawSourceDataset

__all__ = ["MlflowMetricsDataset", "RawSourceDataset"]
