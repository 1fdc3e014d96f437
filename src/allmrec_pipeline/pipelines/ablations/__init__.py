"""ablations: the stage-2 ablations (no user token, random item table, titles only, ...), trained and scored on
the same rows as the default models; run after the default chain with ``kedro run --pipelines ablations``.

Its nodes belong to ``stage2`` and ``evaluate_scenarios`` (tag ``ablation``): the registry composes them
(``pipeline_registry.py``), since no pipeline imports another. This package only makes the name discoverable
when the CLI asks for it alone."""

from .. import lazy_create_pipeline

__all__ = ["create_pipeline"]
__getattr__ = lazy_create_pipeline(__name__)  # create_pipeline imports Kedro: only on first use
