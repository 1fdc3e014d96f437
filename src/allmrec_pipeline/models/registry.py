"""Backbones by name, built from a plain config dict (as it comes from ``parameters_pretrain_cf.yml``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .base import CFBackbone
from .gru4rec import GRU4Rec
from .ncf import NCF
from .nextitnet import NextItNet
from .sasrec import SASRec

BACKBONES: dict[str, type[CFBackbone]] = {cls.name: cls for cls in (SASRec, GRU4Rec, NextItNet, NCF)}


def build_backbone(name: str, n_items: int, config: dict[str, Any]) -> CFBackbone:
    """A fresh backbone ``name`` over items ``1..n_items``, configured by every key of its config class (the
    values of ``pretrain_cf.models.<name>``).

    Raises:
        ValueError: an unknown backbone name, an unknown or a missing config key, naming the valid ones.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    cls = BACKBONES[name]
    config = dict(config)
    known = {f.name for f in dataclasses.fields(cls.config_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} for backbone {name!r}; known: {sorted(known)}")
    missing = sorted(known - set(config))
    if missing:
        raise ValueError(f"missing config key(s) {missing} for backbone {name!r}; it takes {sorted(known)}")
    return cls(n_items, cls.config_class(**config))
