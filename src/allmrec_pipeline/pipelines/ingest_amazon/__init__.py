"""ingest_amazon: raw Amazon (or your own) files -> canonical ``interactions`` and ``items`` tables."""

from .. import lazy_create_pipeline

__all__ = ["create_pipeline"]
__getattr__ = lazy_create_pipeline(__name__)  # create_pipeline imports Kedro: only on first use
