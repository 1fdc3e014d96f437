"""Project pipelines: every folder under ``pipelines/`` becomes a ``--pipeline`` name.

The chain: ingest_amazon -> split_sequences -> pretrain_cf -> stage1 -> stage2 -> evaluate_scenarios, plus
``ablations``, the stage-2 ablation nodes (tag ``ablation``), to run after the chain. Every other pipeline,
and ``__default__`` (their union), leaves those nodes out; Kedro orders nodes by their data dependencies.
"""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from allmrec_pipeline.pipelines.ablations.pipeline import TAG


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects, plus ``__default__``.
    """
    found = find_pipelines(raise_errors=True)  # only the requested one(s) when the CLI names them
    pipelines = {
        name: pipeline if name == "ablations" else pipeline - pipeline.only_nodes_with_tags(TAG)
        for name, pipeline in found.items()
        if name != "__default__"
    }
    pipelines["__default__"] = sum((p for name, p in pipelines.items() if name != "ablations"), Pipeline([]))
    return pipelines
