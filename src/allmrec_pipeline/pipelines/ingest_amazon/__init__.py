"""ingest_amazon: raw Amazon (or your own) files -> canonical ``interactions`` and ``items`` tables.

``create_pipeline`` is imported on first use, so that the node modules (plain functions) can be imported where
Kedro is not installed, e.g. by a benchmark on a bare GPU machine.
"""

__all__ = ["create_pipeline"]


def __getattr__(name: str):
    if name == "create_pipeline":
        from .pipeline import create_pipeline

        return create_pipeline
    raise AttributeError(name)
