"""Project pipelines: every folder under ``pipelines/`` becomes a ``--pipeline`` name.

The chain: ingest_amazon -> split_sequences -> pretrain_cf -> stage1 -> stage2 -> evaluate_scenarios.
``__default__`` is their union; Kedro orders the nodes by their data dependencies.
"""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects, plus ``__default__`` (all of them).
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
