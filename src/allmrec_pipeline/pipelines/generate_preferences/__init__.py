"""generate_preferences: the paper's language-generation task (§5.4.4). A-LLMRec, the frozen LLM and TALLRec name
each user's favourite category in words; run after the default chain and the ablations (TALLRec's adapters) with
``kedro run --pipelines generate_preferences``."""

from .. import lazy_create_pipeline

__all__ = ["create_pipeline"]
__getattr__ = lazy_create_pipeline(__name__)  # create_pipeline imports Kedro: only on first use
