"""Wiring of ``evaluate_scenarios``: all models, all scenarios, the same frozen rows.

The stage-2 ablations are scored by their own nodes (tag ``ablation``) on the same rows, so that the default
run never needs their checkpoints; ``kedro run --pipeline ablations`` trains and scores them.
"""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from allmrec_pipeline.variants import ABLATION_TAG, ABLATION_VARIANTS

from .nodes import (
    choose_cf_text_weight,
    compare_models,
    encode_item_titles,
    evaluate_models,
    summarize_scenarios,
    write_report,
)

SHARED_INPUTS = {
    "cf_model": "cf_model",
    "stage2_model": "stage2_model",
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
    "llms": "params:llms",
    "llm": "params:llm",
    "dataset": "params:dataset",
    "cross_domain_dataset": "params:cross_domain_dataset",
    "cross_domain_enabled": "params:cross_domain_enabled",
    "seed": "params:seed",
}


def create_pipeline(**kwargs) -> Pipeline:
    evaluate_ablations = update_wrapper(
        partial(evaluate_models, models_key="ablation_models"), evaluate_models
    )
    return Pipeline(
        [
            Node(
                func=encode_item_titles,
                inputs=[
                    "items",
                    "item_index",
                    "cross_domain_items",
                    "cross_domain_item_index",
                    "params:evaluate_scenarios",
                    "params:cross_domain_enabled",
                ],
                outputs=["item_title_vectors", "cross_domain_item_title_vectors"],
                name="encode_item_titles",
            ),
            Node(
                func=choose_cf_text_weight,
                inputs=["cf_model", "eval_candidates", "items", "item_index", "params:evaluate_scenarios"],
                outputs=["cf_text_weight", "cf_text_mlflow_metrics"],
                name="choose_cf_text_weight",
            ),
            Node(
                func=evaluate_models,
                inputs={
                    **SHARED_INPUTS,
                    "stage2_mlp_llm_model": "stage2_mlp_llm_model",
                    "item_title_vectors": "item_title_vectors",
                    "cross_item_title_vectors": "cross_domain_item_title_vectors",
                    "cf_text_weight": "cf_text_weight",
                },
                outputs="predictions",
                name="evaluate_models",
            ),
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
            Node(
                func=evaluate_ablations,
                inputs={
                    **SHARED_INPUTS,
                    **{f"stage2_{v}_model": f"stage2_{v}_model" for v in ABLATION_VARIANTS},
                },
                outputs="ablation_predictions",
                name="evaluate_ablations",
                tags=[ABLATION_TAG],
            ),
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
    )
