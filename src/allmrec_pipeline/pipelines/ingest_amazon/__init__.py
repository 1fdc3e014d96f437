"""ingest_amazon: raw Amazon (or your own) files -> canonical ``interactions`` and ``items`` tables."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
