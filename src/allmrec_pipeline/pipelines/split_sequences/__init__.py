"""split_sequences: integer indexes, leave-one-out splits, scenario sets and frozen evaluation candidates."""

from .. import lazy_create_pipeline

__all__ = ["create_pipeline"]
__getattr__ = lazy_create_pipeline(__name__)  # create_pipeline imports Kedro: only on first use
