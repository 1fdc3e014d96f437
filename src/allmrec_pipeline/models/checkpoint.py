"""Backbone checkpoints: safetensors weights plus the metadata that rebuilds the model (name, item count,
config), with shape checks that turn a mismatch into a message naming the cause."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import torch
from torch import nn

from .base import CFBackbone
from .registry import build_backbone


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model or data it is loaded for."""


class Checkpoint(NamedTuple):
    """Weights and the string metadata that rebuilds their model (what a ``.safetensors`` file holds)."""

    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]


def state_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict as contiguous CPU tensors, ready for safetensors."""
    return {key: value.detach().cpu().contiguous() for key, value in module.state_dict().items()}


def backbone_checkpoint(model: CFBackbone) -> Checkpoint:
    """The backbone's weights with its name, item count and config."""
    metadata = {
        "kind": "cf_backbone",
        "backbone": model.name,
        "n_items": str(model.n_items),
        "config": json.dumps(model.config.to_dict()),
    }
    return Checkpoint(state_tensors(model), metadata)


def load_backbone(checkpoint: Checkpoint, expected_n_items: int | None = None) -> CFBackbone:
    """Rebuild a backbone from a checkpoint, in eval mode.

    Args:
        checkpoint: The saved state dict and metadata (``backbone``, ``n_items``, ``config``).
        expected_n_items: The item count of the data it will be used with; a different count means the
            checkpoint was trained on another dataset (or another split) and is refused.

    Raises:
        CheckpointMismatchError: wrong kind, other item count, or weights that do not fit the config.
    """
    tensors, metadata = checkpoint
    if metadata.get("kind") != "cf_backbone":
        raise CheckpointMismatchError(f"not a CF backbone checkpoint (kind={metadata.get('kind')!r})")
    n_items = int(metadata["n_items"])
    if expected_n_items is not None and n_items != expected_n_items:
        raise CheckpointMismatchError(
            f"the {metadata['backbone']} checkpoint has {n_items} items but the item index has "
            f"{expected_n_items}: it was trained on another dataset or split; re-run pretrain_cf"
        )
    model = build_backbone(metadata["backbone"], n_items, json.loads(metadata["config"]))
    load_state_checked(model, tensors, what=f"{metadata['backbone']} checkpoint")
    return model.eval()


def load_state_checked(model: nn.Module, tensors: dict[str, Any], what: str) -> None:
    """``load_state_dict(strict=True)``, but every missing, unexpected or mis-shaped key is listed first."""
    expected = model.state_dict()
    problems = [f"missing {key}" for key in expected.keys() - tensors.keys()]
    problems += [f"unexpected {key}" for key in tensors.keys() - expected.keys()]
    problems += [
        f"{key}: checkpoint {tuple(tensors[key].shape)} vs model {tuple(value.shape)}"
        for key, value in expected.items()
        if key in tensors and tensors[key].shape != value.shape
    ]
    if problems:
        raise CheckpointMismatchError(
            f"{what} does not fit the model ({len(problems)} tensor(s)): " + "; ".join(sorted(problems)[:8])
        )
    model.load_state_dict(tensors, strict=True)


def module_checkpoint(module: nn.Module, kind: str, **metadata: Any) -> Checkpoint:
    """Any module's weights with a ``kind`` and JSON-encoded metadata (configs, sizes, names)."""
    encoded = {key: value if isinstance(value, str) else json.dumps(value) for key, value in metadata.items()}
    return Checkpoint(state_tensors(module), {"kind": kind, **encoded})


def require_kind(checkpoint: Checkpoint, kind: str) -> dict[str, str]:
    """The checkpoint's metadata, after checking it holds a ``kind`` model."""
    if checkpoint.metadata.get("kind") != kind:
        raise CheckpointMismatchError(
            f"expected a {kind} checkpoint, got kind={checkpoint.metadata.get('kind')!r}"
        )
    return checkpoint.metadata
