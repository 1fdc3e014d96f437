"""Complete configs for unit tests. The library's config classes have no defaults (conf/base is the one source of
the pipelines' values); a unit test states every value it runs with. These are the small, fast settings the
tests were written against; each test overrides what it is about."""

from __future__ import annotations

from typing import Any

from allmrec_pipeline.llm.loading import EMBEDDED, LLMSpec
from allmrec_pipeline.llm.recommender import LEGACY_STAGE2, Stage2Config
from allmrec_pipeline.llm.training import Stage2TrainingConfig
from allmrec_pipeline.models.alignment import AlignmentConfig
from allmrec_pipeline.models.alignment_training import Stage1TrainingConfig
from allmrec_pipeline.models.training import TrainingConfig

BACKBONE_CONFIGS: dict[str, dict[str, Any]] = {
    "sasrec": {"hidden_size": 50, "dropout": 0.2, "max_seq_len": 50, "num_blocks": 2, "num_heads": 1},
    "gru4rec": {"hidden_size": 64, "dropout": 0.25, "max_seq_len": 50, "num_layers": 1},
    "nextitnet": {
        "hidden_size": 64,
        "dropout": 0.2,
        "max_seq_len": 50,
        "kernel_size": 3,
        "dilations": [1, 2, 4, 8],
        "num_stacks": 1,
    },
    "ncf": {
        "hidden_size": 64,
        "dropout": 0.2,
        "max_seq_len": 50,
        "mlp_layers": [64, 32],
        "score_chunk": 2048,
    },
}
TRAINING = {
    "epochs": 200,
    "batch_size": 128,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "loss": "bce",
    "patience": 10,
    "lr_decay": None,
    "lr_decay_patience": 1,
    "ema_decay": None,
    "lr_schedule": "constant",
    "eval_every": 1,
    "eval_batch_size": 512,
    "windows": False,
    "window_stride": None,
}
ALIGNMENT = {
    "latent_dim": 128,
    "alpha": 0.5,
    "beta": 0.5,
    "use_matching": True,
    "use_item_recon": True,
    "use_text_recon": True,
    "use_rec": True,
    "standardize_inputs": True,
}
STAGE1_TRAINING = {
    "epochs": 1,
    "frozen_text_epochs": 0,
    "batch_size": 32,
    "lr": 1e-4,
    "sbert_lr": None,
    "all_items": False,
    "max_examples": None,
    "recall_sample": 1000,
}
STAGE2_TRAINING = {
    "epochs": 1,
    "batch_size": 4,
    "grad_accumulation": 1,
    "lr": 1e-4,
    "max_train_users": None,
    "targets": "held_out",
    "n_negatives": 19,
    "max_valid_rows": 100,
    "head_warmup_epochs": 0,
    "head_warmup_users": None,
    "head_lr": None,
    "gate_valid_rows": 0,
    "matcher_steps": 0,
    "matcher_batch_size": 8,
    "matcher_negatives": 3,
    "matcher_lr": 0.01,
    "matcher_max_count": 5,
    "gate_choice": "nested",
    "gate_bounds": {
        "overall_minus_cf": 0.0,
        "cold_minus_text_overlap": -0.02,
        "cold_minus_cf": 0.15,
        "warm_minus_cf": 0.0,
    },
    "gate_point": "best",
}
LLM = {"model": EMBEDDED, "gguf_file": None, "revision": None, "dtype": "auto", "device": "auto"}


def backbone_config(name: str, **overrides: Any) -> dict[str, Any]:
    return {**BACKBONE_CONFIGS[name], **overrides}


def training_config(**overrides: Any) -> TrainingConfig:
    return TrainingConfig(**{**TRAINING, **overrides})


def alignment_config(**overrides: Any) -> AlignmentConfig:
    return AlignmentConfig(**{**ALIGNMENT, **overrides})


def stage1_training_config(**overrides: Any) -> Stage1TrainingConfig:
    return Stage1TrainingConfig(**{**STAGE1_TRAINING, **overrides})


def stage2_config(**overrides: Any) -> Stage2Config:
    """The plain head over the soft tokens, no CF skip, no gate, all LLM layers (the tiny LLMs have few)."""
    return Stage2Config(**{**LEGACY_STAGE2, **overrides})


def stage2_training_config(**overrides: Any) -> Stage2TrainingConfig:
    return Stage2TrainingConfig(**{**STAGE2_TRAINING, **overrides})


def llm_spec(**overrides: Any) -> LLMSpec:
    return LLMSpec(**{**LLM, **overrides})
