"""Seeded random generators: one independent, stable stream per purpose."""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, purpose: str) -> np.random.Generator:
    """An independent, stable generator per purpose: adding a new random step never shifts the others."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(purpose.encode())]))
