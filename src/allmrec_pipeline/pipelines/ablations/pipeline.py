"""Wiring of ``ablations``: the nodes of ``stage2`` and ``evaluate_scenarios`` tagged ``ablation``."""

from kedro.pipeline import Pipeline

from ..evaluate_scenarios.pipeline import create_pipeline as evaluate_scenarios
from ..stage2.pipeline import create_pipeline as stage2

TAG = "ablation"


def create_pipeline(**kwargs) -> Pipeline:
    return (stage2() + evaluate_scenarios()).only_nodes_with_tags(TAG)
