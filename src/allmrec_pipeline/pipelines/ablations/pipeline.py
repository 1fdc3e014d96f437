"""``ablations`` is composed by the registry from the ``ablation`` nodes of ``stage2`` and ``evaluate_scenarios``."""

from kedro.pipeline import Pipeline


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([])  # filled by pipeline_registry.register_pipelines
