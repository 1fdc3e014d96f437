"""Wiring of ``stage1``: for the backbone named by ``params:backbone``."""

from kedro.pipeline import Node, Pipeline

from .nodes import align_collaborative_and_text, embed_foreign_items, embed_items


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=align_collaborative_and_text,
                inputs={
                    "cf_model": "cf_model",
                    "train_sequences": "train_sequences",
                    "item_index": "item_index",
                    "items": "items",
                    "stage1": "params:stage1",
                    "seed": "params:seed",
                    "checkpoints": "params:checkpoints",
                    "device": "params:device",
                },
                outputs=[
                    "stage1_model",
                    "stage1_sbert",
                    "stage1_item_text_vectors",
                    "stage1_metrics",
                    "stage1_report",
                ],
                name="align_collaborative_and_text",
            ),
            Node(
                func=embed_items,
                inputs={
                    "stage1_model": "stage1_model",
                    "stage1_item_text_vectors": "stage1_item_text_vectors",
                    "cf_model": "cf_model",
                    "item_index": "item_index",
                    "item_popularity": "item_popularity",
                    "stage1": "params:stage1",
                },
                outputs=["joint_item_embeddings", "text_item_embeddings"],
                name="embed_items",
            ),
            Node(
                func=embed_foreign_items,
                inputs={
                    "stage1_model": "stage1_model",
                    "stage1_sbert": "stage1_sbert",
                    "foreign_item_index": "cross_domain_item_index",
                    "foreign_items": "cross_domain_items",
                    "stage1": "params:stage1",
                    "enabled": "params:cross_domain_enabled",
                    "device": "params:device",
                },
                outputs="cross_domain_foreign_item_embeddings",
                name="embed_foreign_items",
            ),
        ]
    )
