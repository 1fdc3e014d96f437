"""Wiring of ``evaluate_scenarios``: all models, all scenarios, the same frozen rows.

One node per model (``evaluate_<model>``), each wired to the inputs it reads, then one table of predictions.
The stage-2 ablations are scored by nodes of their own (tag ``ablation``) on the same rows, so that the default
run never needs their checkpoints; ``kedro run --pipelines ablations`` trains and scores them, and
``ablations_<variant>`` one of them (``ablation_nodes``).
"""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from allmrec_pipeline.variants import (
    ABLATION_RUN_MODELS,
    ABLATION_RUN_VARIANTS,
    ABLATION_TAG,
    DEFAULT_MODELS,
    WITHOUT_LLM,
)

from .nodes import (
    choose_cf_text_weight,
    choose_text_gate,
    collect_predictions,
    compare_models,
    encode_cross_domain_item_titles,
    evaluate_model,
    summarize_scenarios,
    write_report,
)

# what every model reads: the frozen rows and items of both domains, the CF model, the embeddings, parameters
ROW_INPUTS = {
    "cf_model": "cf_model",
    "joint_item_embeddings": "joint_item_embeddings",
    "text_item_embeddings": "text_item_embeddings",
    "eval_candidates": "eval_candidates",
    "item_index": "item_index",
    "item_popularity": "item_popularity",
    "items": "items",
    "cross_eval_candidates": "cross_domain_eval_candidates",
    "cross_item_index": "cross_domain_item_index",
    "cross_items": "cross_domain_items",
    "foreign_item_embeddings": "cross_domain_foreign_item_embeddings",
    "evaluate_scenarios": "params:evaluate_scenarios",
    "stage2": "params:stage2",
    "dataset": "params:dataset",
    "cross_domain_dataset": "params:cross_domain_dataset",
    "cross_domain_enabled": "params:cross_domain_enabled",
    "seed": "params:seed",
}
LLM_INPUTS = {"llms": "params:llms", "llm": "params:llm"}


def model_inputs(model: str) -> dict[str, str]:
    """The catalog inputs of ``model``'s node: the rows, plus the LLM and its stage-2 checkpoint, the title
    vectors (``text_cosine``), the chosen weight (``cf_text``), the stage-2 model (``text_matcher``, ``cooccurrence``) and its
    LLM-free gate's weights (``cf_text_gate``)."""
    title_vectors = {
        "item_title_vectors": "item_title_vectors",
        "cross_item_title_vectors": "cross_domain_item_title_vectors",
    }
    text_gate = {**title_vectors, "stage2_model": "stage2_model"}  # the stage-2 model's LLM-free inputs
    own = {
        "text_cosine": title_vectors,
        "cf_text": {"cf_text_weight": "cf_text_weight"},
        "text_matcher": text_gate,
        "cooccurrence": text_gate,
        "cf_text_gate": {**text_gate, "cf_text_gate": "cf_text_gate"},
    }.get(model, {})
    if model in WITHOUT_LLM:
        return {**ROW_INPUTS, **own}
    if model == "llm_only":  # the frozen LLM with titles only: no checkpoint
        return {**ROW_INPUTS, **LLM_INPUTS}
    checkpoint = "stage2_model" if model in ("a_llmrec", "a_llmrec_sbert") else f"stage2_{model}_model"
    # a stage-2 model whose count gate weighs z(text_cosine) reads the title vectors
    return {**ROW_INPUTS, **LLM_INPUTS, **title_vectors, checkpoint: checkpoint}


def _scoring_nodes(
    models: tuple[str, ...],
    prefix: str,
    models_key: str,
    tags: tuple[str, ...],
    one_variant: str | None = None,
) -> list[Node]:
    """One node per model, then the node collecting their predictions into ``<prefix>predictions``
    (``one_variant``: see ``collect_predictions``)."""
    nodes = [
        Node(
            func=update_wrapper(partial(evaluate_model, model, models_key=models_key), evaluate_model),
            inputs=model_inputs(model),
            outputs=f"{prefix}predictions_{model}",
            name=f"{prefix}evaluate_{model}",
            tags=list(tags),
        )
        for model in models
    ]
    collect = partial(collect_predictions, wired=models, models_key=models_key, one_variant=one_variant)
    nodes.append(
        Node(
            func=update_wrapper(collect, collect_predictions),
            inputs=["params:evaluate_scenarios", *(f"{prefix}predictions_{model}" for model in models)],
            outputs=f"{prefix}predictions",
            name=f"{prefix}collect_predictions",
            tags=list(tags),
        )
    )
    return nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=encode_cross_domain_item_titles,
                inputs=[
                    "cross_domain_items",
                    "cross_domain_item_index",
                    "params:evaluate_scenarios",
                    "params:title_encoder",
                    "params:cross_domain_enabled",
                ],
                outputs="cross_domain_item_title_vectors",
                name="encode_cross_domain_item_titles",
            ),
            Node(
                func=choose_cf_text_weight,
                inputs=["cf_model", "eval_candidates", "items", "item_index", "params:evaluate_scenarios"],
                outputs=["cf_text_weight", "cf_text_mlflow_metrics"],
                name="choose_cf_text_weight",
            ),
            Node(
                func=choose_text_gate,
                inputs=[
                    "cf_model",
                    "stage2_model",
                    "eval_candidates",
                    "items",
                    "item_index",
                    "item_popularity",
                    "item_title_vectors",
                    "params:stage2",
                    "params:evaluate_scenarios",
                    "params:seed",
                ],
                outputs=["cf_text_gate", "cf_text_gate_mlflow_metrics"],
                name="choose_text_gate",
            ),
            *_scoring_nodes(DEFAULT_MODELS, "", "models", ()),
            Node(
                func=summarize_scenarios,
                inputs=["predictions", "params:evaluate_scenarios", "params:seed"],
                outputs=["scenario_metrics", "scenario_mlflow_metrics"],
                name="summarize_scenarios",
            ),
            Node(
                func=compare_models,
                inputs=["predictions", "params:evaluate_scenarios", "params:seed"],
                outputs=["paired_differences", "paired_mlflow_metrics"],
                name="compare_models",
            ),
            Node(
                func=write_report,
                inputs=["scenario_metrics", "paired_differences", "predictions", "params:dataset"],
                outputs=["results_markdown", "results_plots"],
                name="write_report",
            ),
            *ablation_nodes(),
        ]
    )


def ablation_nodes(variant: str | None = None) -> list[Node]:
    """The ablation run's scoring nodes (tag ``ablation``): every model of ``ABLATION_RUN_MODELS``, or with
    ``variant`` (a name of ``ABLATION_RUN_VARIANTS``) the models that are no variant and that one."""
    models = ABLATION_RUN_MODELS
    if variant is not None:
        models = tuple(m for m in ABLATION_RUN_MODELS if m not in ABLATION_RUN_VARIANTS or m == variant)
    return [
        *_scoring_nodes(models, "ablation_", "ablation_models", (ABLATION_TAG,), variant),
        Node(
            func=summarize_scenarios,
            inputs=["ablation_predictions", "params:evaluate_scenarios", "params:seed"],
            outputs=["ablation_scenario_metrics", "ablation_mlflow_metrics"],
            name="summarize_ablations",
            tags=[ABLATION_TAG],
        ),
        Node(
            func=compare_models,
            inputs=["ablation_predictions", "params:evaluate_scenarios", "params:seed"],
            outputs=["ablation_paired_differences", "ablation_paired_mlflow_metrics"],
            name="compare_ablations",
            tags=[ABLATION_TAG],
        ),
    ]
