"""Wiring of ``stage2``: the LLM named by ``params:llm``, over the backbone named by ``params:backbone``."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_projectors


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=train_projectors,
                inputs={
                    "cf_model": "cf_model",
                    "joint_item_embeddings": "joint_item_embeddings",
                    "train_sequences": "train_sequences",
                    "sequences": "sequences",
                    "eval_candidates": "eval_candidates",
                    "item_index": "item_index",
                    "items": "items",
                    "stage2": "params:stage2",
                    "llms": "params:llms",
                    "llm": "params:llm",
                    "dataset": "params:dataset",
                    "seed": "params:seed",
                },
                outputs=["stage2_model", "stage2_metrics", "stage2_report"],
                name="train_projectors",
            ),
        ]
    )
