"""The run's compute device: one setting (``device`` in parameters.yml) for every training and scoring step."""

from __future__ import annotations

import os

import torch

from allmrec_pipeline.errors import ConfigError


def resolve_device(name: str) -> str:
    """``auto``: the first CUDA device when there is one, else the CPU; ``cuda``/``cuda:N`` must exist. Under
    ``torchrun`` ``auto`` and ``cuda`` mean the process's own GPU, ``cuda:<LOCAL_RANK>``.

    Raises:
        ValueError: a CUDA device is asked for that torch does not see (no GPU, a CPU build of torch, or N too
            large), or the name is not a device.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        name = f"cuda:{os.environ['LOCAL_RANK']}"
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        index = int(name[5:]) if ":" in name else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r} is asked for, but torch sees {torch.cuda.device_count()} CUDA device(s): "
                "use auto or cpu"
            )
        return name
    raise ValueError(f"{name!r} is not a device: use auto, cpu, cuda or cuda:N")


def run_device(name: str) -> str:
    """``resolve_device`` for a node: an unusable device is a ``ConfigError`` naming the parameter."""
    try:
        return resolve_device(name)
    except ValueError as exc:
        raise ConfigError(f"params 'device': {exc}") from exc
