"""Wiring of ``pretrain_cf``: the backbone named by ``params:backbone`` (``--params backbone=gru4rec``), with its
own settings only (``params:cf_backbone_config``), so a run logs no other backbone's hyperparameters."""

from kedro.pipeline import Node, Pipeline

from .nodes import evaluate_backbone, train_backbone


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=train_backbone,
                inputs={
                    "train_sequences": "train_sequences",
                    "eval_candidates": "eval_candidates",
                    "item_index": "item_index",
                    "backbone_config": "params:cf_backbone_config",
                    "training": "params:pretrain_cf.training",
                    "backbone": "params:backbone",
                    "seed": "params:seed",
                    "checkpoints": "params:checkpoints",
                    "device": "params:device",
                },
                outputs=["cf_model", "cf_training_metrics", "cf_training_report"],
                name="train_backbone",
            ),
            Node(
                func=evaluate_backbone,
                inputs={
                    "cf_model": "cf_model",
                    "eval_candidates": "eval_candidates",
                    "item_index": "item_index",
                    "training_report": "cf_training_report",
                    "evaluation": "params:pretrain_cf.evaluation",
                    "seed": "params:seed",
                    "device": "params:device",
                },
                outputs=["cf_test_metrics", "cf_report"],
                name="evaluate_backbone",
            ),
        ]
    )
