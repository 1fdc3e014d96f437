"""split_sequences: integer indexes, leave-one-out splits, scenario sets and frozen evaluation candidates."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
