"""Project pipelines: every folder under ``pipelines/`` becomes a ``--pipeline`` name.

The chain: ingest_amazon -> split_sequences -> pretrain_cf -> stage1 -> stage2 -> evaluate_scenarios, plus
``ablations``, the stage-2 ablation nodes of ``stage2`` and ``evaluate_scenarios`` (tag ``ablation``), to run
after the chain. Every other pipeline, and ``__default__`` (their union), leaves those nodes out; Kedro orders
nodes by their data dependencies.
"""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from allmrec_pipeline.pipelines import evaluate_scenarios, stage2
from allmrec_pipeline.variants import ABLATION_TAG


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects, plus ``__default__`` and ``ablations``.
    """
    found = find_pipelines(raise_errors=True)  # only the requested one(s) when the CLI names them
    pipelines = {
        name: pipeline - pipeline.only_nodes_with_tags(ABLATION_TAG)
        for name, pipeline in found.items()
        if name not in ("__default__", "ablations")
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    pipelines["ablations"] = (
        stage2.create_pipeline() + evaluate_scenarios.create_pipeline()
    ).only_nodes_with_tags(ABLATION_TAG)
    return pipelines
