"""Project pipelines: every folder under ``pipelines/`` becomes a ``--pipelines`` name.

The chain: ingest_amazon -> split_sequences -> pretrain_cf -> stage1 -> stage2 -> evaluate_scenarios, plus
``ablations``, the stage-2 ablation nodes of ``stage2`` and ``evaluate_scenarios`` (tag ``ablation``), to run
after the chain (``ablations_<variant>``: one variant's training and scores), and ``generate_preferences`` (the
language-generation task), after the ablations. Every other pipeline, and ``__default__`` (their union), leaves
those out; Kedro orders nodes by their data dependencies.
"""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from allmrec_pipeline.pipelines import stage2
from allmrec_pipeline.pipelines.evaluate_scenarios.pipeline import ablation_nodes
from allmrec_pipeline.variants import ABLATION_RUN_VARIANTS, ABLATION_TAG


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects, plus ``__default__``, ``ablations``
        and ``ablations_<variant>``.
    """
    try:
        found = find_pipelines(raise_errors=True)  # only the requested one(s) when the CLI names them
    except ImportError:
        # a name with no package of its own (ablations_<variant>) or none at all: Kedro then says which
        return all_pipelines()
    return compose(found)


def all_pipelines() -> dict[str, Pipeline]:
    """Every pipeline as ``register_pipelines`` composes them, whichever the run asked for (Kedro's
    ``find_pipelines`` finds only the CLI's)."""
    import importlib
    import pkgutil

    from allmrec_pipeline import pipelines as package

    found = {
        module.name: importlib.import_module(f"{package.__name__}.{module.name}").create_pipeline()
        for module in pkgutil.iter_modules(package.__path__)
        if module.ispkg
    }
    return compose(found)


def compose(found: dict[str, Pipeline]) -> dict[str, Pipeline]:
    """The registry from the found pipeline packages: each without the ablation nodes, ``__default__`` (all but
    ``generate_preferences``), ``ablations`` and one ``ablations_<variant>`` per trained variant."""
    pipelines = {
        name: pipeline - pipeline.only_nodes_with_tags(ABLATION_TAG)
        for name, pipeline in found.items()
        if name not in ("__default__", "ablations")
    }
    after_chain = ("generate_preferences",)  # reads the ablations' TALLRec adapters: run on request only
    pipelines["__default__"] = sum(
        (p for name, p in pipelines.items() if name not in after_chain), Pipeline([])
    )
    trained = stage2.create_pipeline().only_nodes_with_tags(ABLATION_TAG)
    pipelines["ablations"] = trained + Pipeline(ablation_nodes())
    # one variant a run: its training, and its scores beside the models that are no variant
    for variant in ABLATION_RUN_VARIANTS:
        one = trained.only_nodes(f"train_projectors_{variant}")
        pipelines[f"ablations_{variant}"] = one + Pipeline(ablation_nodes(variant))
    return pipelines
