"""stage1: align the frozen backbone's item embeddings with item texts (A-LLMRec §4.1)."""

from .. import lazy_create_pipeline

__all__ = ["create_pipeline"]
__getattr__ = lazy_create_pipeline(__name__)  # create_pipeline imports Kedro: only on first use
