"""pretrain_cf: train and test a CF backbone (SASRec, GRU4Rec, NextItNet or NCF)."""

from .. import lazy_create_pipeline

__all__ = ["create_pipeline"]
__getattr__ = lazy_create_pipeline(__name__)  # create_pipeline imports Kedro: only on first use
