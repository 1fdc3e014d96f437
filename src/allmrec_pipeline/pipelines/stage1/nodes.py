"""Nodes of ``stage1``: align the frozen backbone's item embeddings with item texts, then embed every item."""

from __future__ import annotations

import json
import logging
import string
from typing import Any

import numpy as np
import pandas as pd
import torch

from allmrec_pipeline.devices import run_device
from allmrec_pipeline.errors import ConfigError, DataError
from allmrec_pipeline.models.alignment import AlignmentConfig, CollaborativeTextAlignment
from allmrec_pipeline.models.alignment_training import (
    Stage1TrainingConfig,
    frozen_user_signal,
    train_alignment,
)
from allmrec_pipeline.models.checkpoint import (
    Checkpoint,
    CheckpointMismatchError,
    load_backbone,
    load_state_checked,
    module_checkpoint,
    require_kind,
)
from allmrec_pipeline.models.text_encoder import (
    CachedTextEncoder,
    PrecomputedTextEncoder,
    load_sentence_transformer,
    set_trainable_layers,
)
from allmrec_pipeline.resume import TrainingCheckpoints, fingerprint
from allmrec_pipeline.tracking import epoch_logger, log_history

logger = logging.getLogger(__name__)


def render_item_texts(items: pd.DataFrame, item_index: pd.DataFrame, text: dict[str, Any]) -> list[str]:
    """Item texts by item index (position 0, padding, is ``""``), from the configured templates.

    Raises:
        ConfigError: a template names a field the items table does not have.
        DataError: an indexed item has no row in the items table.
    """
    merged = item_index.merge(items, on="item_id", how="left", validate="one_to_one", indicator=True)
    missing = merged.loc[merged["_merge"] == "left_only", "item_id"]
    if len(missing):
        raise DataError(f"{len(missing)} indexed item(s) have no row in 'items', e.g. {list(missing[:5])}")
    rows = merged.sort_values("item_idx").drop(columns="_merge").fillna("").to_dict("records")
    if [row["item_idx"] for row in rows] != list(range(1, len(rows) + 1)):
        raise DataError("item_index must number items 1..N without gaps")
    templates = {key: text[key] for key in ("template", "template_without_description")}
    for key, template in templates.items():
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        unknown = fields - set(merged.columns)
        if unknown:
            raise ConfigError(
                f"params 'stage1.text.{key}' uses unknown field(s) {sorted(unknown)}; items have {sorted(items.columns)}"
            )
    return [""] + [
        (
            templates["template"] if row.get("description") else templates["template_without_description"]
        ).format(**row)
        for row in rows
    ]


def _sbert(stage1: dict[str, Any], device: str = "cpu"):
    try:
        return load_sentence_transformer(stage1["sbert"]["model"], device=device)
    except FileNotFoundError as exc:
        raise ConfigError(f"params 'stage1.sbert.model': {exc}") from exc


def _configs(stage1: dict[str, Any]) -> tuple[AlignmentConfig, Stage1TrainingConfig]:
    try:
        return AlignmentConfig(**stage1["alignment"]), Stage1TrainingConfig(**stage1["training"])
    except TypeError as exc:
        raise ConfigError(f"params 'stage1.alignment' / 'stage1.training': {exc}") from exc


def align_collaborative_and_text(
    cf_model: Checkpoint,
    train_sequences: pd.DataFrame,
    item_index: pd.DataFrame,
    items: pd.DataFrame,
    stage1: dict[str, Any],
    seed: int,
    checkpoints: dict[str, Any],
    device: str = "cpu",
) -> tuple[Checkpoint, Checkpoint, Checkpoint, dict[str, Any], dict[str, Any]]:
    """Train the four alignment networks (and fine-tune SBERT) against the frozen backbone.

    Each epoch's losses and diagnostics go to the MLflow run as the epoch ends (``stage1.*`` at step = epoch).
    The loop checkpoints after every epoch under ``checkpoints.dir``, keyed by the backbone's weights, the item
    texts, the ``stage1`` parameters and the seed: an interrupted run rerun with the same inputs resumes.

    Args:
        cf_model: The pre-trained backbone (pretrain_cf).
        train_sequences: Training sequences; each user's last training item is the signal.
        item_index: The item index.
        items: Item texts (title, description).
        stage1: ``stage1`` parameters.
        seed: The global seed.
        checkpoints: ``checkpoints`` parameters (``dir``; null: no checkpoints).
        device: The run's device (``params:device``): SBERT, the backbone and the alignment networks train there.

    Returns:
        The alignment checkpoint, the fine-tuned SBERT checkpoint, the fine-tuned SBERT's vector of every item
        text (``(N+1, d_sbert)``, row 0 zero), summary metrics and the training report (with the curves).
    """
    device = run_device(device)
    backbone = load_backbone(cf_model, expected_n_items=len(item_index)).requires_grad_(False).to(device)
    alignment_config, training = _configs(stage1)
    texts = render_item_texts(items, item_index, stage1["text"])
    sbert = _sbert(stage1, device)
    trainable = set_trainable_layers(
        sbert, bool(stage1["sbert"]["freeze"]), stage1["sbert"]["trainable_layers"]
    )
    encoder = CachedTextEncoder(
        sbert,
        texts,
        int(stage1["text"]["max_tokens"]),
        int(stage1["sbert"]["chunk_size"]),
        cache_frozen_layers=bool(stage1["sbert"]["cache_frozen_layers"]),
    )
    torch.manual_seed(seed)
    alignment = CollaborativeTextAlignment(backbone.hidden_size, encoder.dim, alignment_config).to(device)
    signal = frozen_user_signal(backbone, list(train_sequences["items"]), training.all_items)
    logger.info(
        "Stage 1 on %s (%s): %d examples, %d trainable SBERT parameters, switches %s",
        backbone.name,
        device,
        len(signal.positives),
        trainable,
        alignment_config.to_dict(),
    )
    key = fingerprint(cf_model.tensors, cf_model.metadata, texts, stage1, seed, signal.positives)
    result = train_alignment(
        alignment,
        backbone,
        encoder,
        signal,
        training,
        seed,
        on_epoch=epoch_logger("stage1"),
        checkpoints=TrainingCheckpoints(checkpoints["dir"], f"stage1_{backbone.name}", key),
    )
    if result.resumed_from_epoch:  # the epochs before went to the interrupted run: this run gets them too
        log_history("stage1", result.history, 1, result.resumed_from_epoch)
    final = {key: values[-1] for key, values in result.history.items()}
    logger.info("Stage 1 final epoch: %s", {k: round(v, 4) for k, v in final.items()})
    checkpoint = module_checkpoint(
        alignment,
        "stage1_alignment",
        backbone=backbone.name,
        cf_dim=backbone.hidden_size,
        text_dim=encoder.dim,
        config=alignment_config.to_dict(),
        n_items=backbone.n_items,
    )
    sbert_checkpoint = module_checkpoint(
        sbert, "sbert", base_model=stage1["sbert"]["model"], text=stage1["text"]
    )
    # the frozen-SBERT epochs already encoded every item with the final SBERT; otherwise encode them now
    text_vectors = result.text_vectors
    if text_vectors is None:
        text_vectors = PrecomputedTextEncoder.from_encoder(encoder, backbone.n_items)
    vectors_checkpoint = module_checkpoint(text_vectors, "sbert_item_vectors", n_items=backbone.n_items)
    report = {
        "backbone": backbone.name,
        "examples_per_epoch": len(signal.positives)
        if training.max_examples is None
        else min(training.max_examples, len(signal.positives)),
        "trainable_sbert_parameters": trainable,
        "seconds_per_epoch": result.seconds,
        "final": final,
        "resumed_from_epoch": result.resumed_from_epoch,
        "history": result.history,
    }
    metrics = {
        **{f"final.{key}": value for key, value in final.items()},
        "seconds_total": float(sum(result.seconds)),
        "resumed_from_epoch": result.resumed_from_epoch,
    }
    return checkpoint, sbert_checkpoint, vectors_checkpoint, metrics, report


def load_alignment(checkpoint: Checkpoint, cf_dim: int) -> CollaborativeTextAlignment:
    """Rebuild the alignment networks; a backbone of another size is refused with both sizes named."""
    meta = require_kind(checkpoint, "stage1_alignment")
    if int(meta["cf_dim"]) != cf_dim:
        raise CheckpointMismatchError(
            f"the stage-1 checkpoint was trained for a {meta['backbone']} backbone with d={meta['cf_dim']}, "
            f"but this backbone has d={cf_dim}: re-run stage1 for it"
        )
    alignment = CollaborativeTextAlignment(
        int(meta["cf_dim"]), int(meta["text_dim"]), AlignmentConfig(**json.loads(meta["config"]))
    )
    load_state_checked(alignment, checkpoint.tensors, "stage-1 checkpoint")
    return alignment.eval()


def load_text_encoder(
    checkpoint: Checkpoint, texts: list[str], stage1: dict[str, Any], device: str = "cpu"
) -> CachedTextEncoder:
    """The fine-tuned SBERT (its base model from config, its weights from the checkpoint) over ``texts``, on
    ``device``."""
    require_kind(checkpoint, "sbert")
    sbert = _sbert(stage1, device)
    load_state_checked(sbert, checkpoint.tensors, "fine-tuned SBERT checkpoint")
    return CachedTextEncoder(
        sbert.eval(), texts, int(stage1["text"]["max_tokens"]), int(stage1["sbert"]["chunk_size"])
    )


def load_item_text_vectors(checkpoint: Checkpoint, n_items: int) -> torch.Tensor:
    """The fine-tuned SBERT's item vectors ``(N+1, d_sbert)``; refused when made for another item index."""
    meta = require_kind(checkpoint, "sbert_item_vectors")
    if int(meta["n_items"]) != n_items:
        raise CheckpointMismatchError(
            f"the stage-1 item text vectors cover {meta['n_items']} items but the item index has {n_items}: "
            "re-run stage1"
        )
    table = checkpoint.tensors["table"]
    if table.ndim != 2 or table.shape[0] != n_items + 1:
        raise CheckpointMismatchError(
            f"the stage-1 item text vectors table has shape {tuple(table.shape)}, expected ({n_items + 1}, d): "
            "a damaged or hand-edited file; re-run stage1"
        )
    return table


def embed_items(
    stage1_model: Checkpoint,
    stage1_item_text_vectors: Checkpoint,
    cf_model: Checkpoint,
    item_index: pd.DataFrame,
    item_popularity: pd.DataFrame,
    stage1: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``joint_item_embeddings(item_idx, e, path)`` and ``text_item_embeddings(item_idx, q)`` for every item.

    An item with at most ``stage1.text_path_max_count`` training interactions (0: none) has an untrained or
    barely trained CF embedding, so its joint embedding takes the text path, ``q_i``; ``path`` says which
    (``cf`` or ``text``). Stage 2 trains and evaluation scores on this one table, so the switch holds for
    both. The item texts' SBERT vectors come from stage-1 training, which encoded every item with the final
    SBERT.
    """
    max_count = stage1.get("text_path_max_count")
    if isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 0:
        raise ConfigError(f"params 'stage1.text_path_max_count' must be an integer >= 0, got {max_count!r}")
    backbone = load_backbone(cf_model, expected_n_items=len(item_index))
    alignment = load_alignment(stage1_model, backbone.hidden_size)
    vectors = load_item_text_vectors(stage1_item_text_vectors, len(item_index))
    idx = torch.arange(1, len(item_index) + 1)
    q = alignment.text_embeddings(vectors[1:])  # (N, d'); row 0 is padding
    e = alignment.joint_embeddings(backbone.item_embeddings.detach()[1:])  # (N, d')
    counts = item_popularity.set_index("item_idx")["count"].reindex(idx.numpy(), fill_value=0).to_numpy()
    text_path = torch.from_numpy(counts <= max_count)
    joint = torch.where(text_path.unsqueeze(1), q, e)
    logger.info(
        "Joint embeddings: %d items by the CF path, %d by the text path",
        int((~text_path).sum()),
        int(text_path.sum()),
    )
    joint_table = pd.DataFrame(
        {
            "item_idx": idx.numpy().astype(np.int32),
            "e": list(joint.numpy().astype(np.float32)),
            "path": np.where(text_path.numpy(), "text", "cf"),
        }
    )
    text_table = pd.DataFrame(
        {"item_idx": idx.numpy().astype(np.int32), "q": list(q.numpy().astype(np.float32))}
    )
    return joint_table, text_table


def embed_foreign_items(
    stage1_model: Checkpoint,
    stage1_sbert: Checkpoint,
    foreign_item_index: pd.DataFrame,
    foreign_items: pd.DataFrame,
    stage1: dict[str, Any],
    enabled: bool,
    device: str = "cpu",
) -> pd.DataFrame:
    """``q_i`` and the stand-in CF embedding ``f_I^dec(q_i)`` of every item of another dataset.

    The backbone never saw these items, so they have no CF embedding of their own. The stand-in lives in the
    backbone's item space: a history of foreign items through the frozen backbone gives a user representation,
    and ``q_i`` plays ``e_i``'s part in the prompt (see docs/pipelines.md, "Cross-domain"). SBERT encodes the
    texts on the run's ``device``.
    """
    if not enabled:
        return pd.DataFrame({"item_idx": pd.Series(dtype="int32"), "q": [], "cf_stand_in": []})
    meta = require_kind(stage1_model, "stage1_alignment")
    alignment = load_alignment(stage1_model, int(meta["cf_dim"]))
    encoder = load_text_encoder(
        stage1_sbert,
        render_item_texts(foreign_items, foreign_item_index, stage1["text"]),
        stage1,
        run_device(device),
    )
    idx = torch.arange(1, len(foreign_item_index) + 1)
    text = encoder.encode_all(idx).cpu()
    return pd.DataFrame(
        {
            "item_idx": idx.numpy().astype(np.int32),
            "q": list(alignment.text_embeddings(text).numpy().astype(np.float32)),
            "cf_stand_in": list(alignment.cf_stand_in(text).numpy().astype(np.float32)),
        }
    )
