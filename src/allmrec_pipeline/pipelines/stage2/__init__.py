"""stage2: projectors that let a frozen LLM read the CF knowledge through soft tokens (A-LLMRec §4.2)."""

from .. import lazy_create_pipeline

__all__ = ["create_pipeline"]
__getattr__ = lazy_create_pipeline(__name__)  # create_pipeline imports Kedro: only on first use
