"""kedro-datasets' JSON, text and Matplotlib datasets with atomic saves (``AtomicWritesMixin``): the reports, the
markdown results table and the plots. They take the same catalog arguments as the kedro-datasets originals."""

from __future__ import annotations

from kedro_datasets.json import JSONDataset as _JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset as _MatplotlibDataset
from kedro_datasets.text import TextDataset as _TextDataset

from .atomic import AtomicWritesMixin


class JSONDataset(AtomicWritesMixin, _JSONDataset):
    """``json.JSONDataset``, each save written to a temporary file and renamed into place."""


class TextDataset(AtomicWritesMixin, _TextDataset):
    """``text.TextDataset``, each save written to a temporary file and renamed into place."""


class MatplotlibDataset(AtomicWritesMixin, _MatplotlibDataset):
    """``matplotlib.MatplotlibDataset``, each figure written to a temporary file and renamed into place (a
    dict or list of figures: file by file)."""
