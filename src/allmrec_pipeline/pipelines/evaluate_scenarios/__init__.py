"""evaluate_scenarios: every model on the same frozen rows of every scenario; metrics and a report."""

from .. import lazy_create_pipeline

__all__ = ["create_pipeline"]
__getattr__ = lazy_create_pipeline(__name__)  # create_pipeline imports Kedro: only on first use
