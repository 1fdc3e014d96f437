"""Wiring of ``register_model``: after ``evaluate_scenarios``, whose paired differences decide the alias."""

from kedro.pipeline import Node, Pipeline

from .nodes import log_and_register


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=log_and_register,
                inputs={
                    "cf_model": "cf_model",
                    "stage2_model": "stage2_model",
                    "joint_item_embeddings": "joint_item_embeddings",
                    "item_index": "item_index",
                    "items": "items",
                    "item_popularity": "item_popularity",
                    "item_title_vectors": "item_title_vectors",
                    "paired_differences": "paired_differences",
                    "register_model": "params:register_model",
                    "dataset": "params:dataset",
                },
                outputs="register_model_report",
                name="log_and_register",
            )
        ]
    )
