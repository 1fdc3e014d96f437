"""register_model: the trained recommender as an MLflow model, registered behind a promotion gate."""

from .. import lazy_create_pipeline

__all__ = ["create_pipeline"]
__getattr__ = lazy_create_pipeline(__name__)  # create_pipeline imports Kedro: only on first use
