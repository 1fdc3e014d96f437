"""Wiring of ``split_sequences``."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    build_cross_domain_candidates,
    build_eval_candidates,
    index_interactions,
    split_users,
    summarize_split,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=index_interactions,
                inputs=["interactions", "items"],
                outputs=["item_index", "user_index", "sequences", "split_index_report"],
                name="index_interactions",
            ),
            Node(
                func=split_users,
                inputs=["sequences", "item_index", "params:split", "params:seed"],
                outputs=[
                    "train_sequences",
                    "eval_targets",
                    "cold_user_sequences",
                    "item_popularity",
                    "split_users_report",
                ],
                name="split_users",
            ),
            Node(
                func=build_eval_candidates,
                inputs={
                    "eval_targets": "eval_targets",
                    "sequences": "sequences",
                    "item_popularity": "item_popularity",
                    "split": "params:split",
                    "evaluate": "params:evaluate",
                    "seed": "params:seed",
                },
                outputs=["eval_candidates", "split_candidates_report"],
                name="build_eval_candidates",
            ),
            Node(
                func=build_cross_domain_candidates,
                inputs={
                    "interactions": "cross_domain_interactions",
                    "items": "cross_domain_items",
                    "split": "params:split",
                    "enabled": "params:cross_domain_enabled",
                    "evaluate": "params:evaluate",
                    "seed": "params:seed",
                },
                outputs=[
                    "cross_domain_item_index",
                    "cross_domain_sequences",
                    "cross_domain_eval_candidates",
                    "split_cross_domain_report",
                ],
                name="build_cross_domain_candidates",
            ),
            Node(
                func=summarize_split,
                inputs=[
                    "split_index_report",
                    "split_users_report",
                    "split_candidates_report",
                    "split_cross_domain_report",
                ],
                outputs=["split_report", "split_metrics"],
                name="summarize_split",
            ),
        ]
    )
