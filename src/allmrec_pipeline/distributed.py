"""Data-parallel training under ``torchrun``: N processes (ranks) each compute every N-th sample of each global
batch, and the gradients are summed across ranks before each optimizer step, so that N ranks take the steps one
process takes on the whole batch (the reduction DDP does; done on the gradients because the training loops call a
model's ``loss``, not its ``forward``). Every rank runs the same seeded loop; only rank 0 writes (the catalog's
outputs, checkpoints, the MLflow run).

One process (no ``WORLD_SIZE`` above 1) is a world of one: every function here is then a no-op."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's rank among ``world`` processes."""

    rank: int = 0
    world: int = 1

    @property
    def writer(self) -> bool:
        """Rank 0: the one process that saves outputs and logs to MLflow."""
        return self.rank == 0

    def part(self, batch: Sequence[T]) -> Sequence[T]:
        """This rank's share of a global ``batch``: every ``world``-th element from position ``rank``."""
        return batch[self.rank :: self.world]


def launched() -> Ranks:
    """The ranks ``torchrun`` announces in the environment (``RANK``, ``WORLD_SIZE``); one process without them.

    Raises:
        ValueError: the variables are not integers with ``0 <= RANK < WORLD_SIZE``.
    """
    try:
        ranks = Ranks(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError as exc:
        raise ValueError(f"RANK and WORLD_SIZE must be integers (torchrun sets them): {exc}") from exc
    if not 0 <= ranks.rank < ranks.world:
        raise ValueError(f"RANK {ranks.rank} is outside WORLD_SIZE {ranks.world}")
    return ranks


def current() -> Ranks:
    """The ranks of the joined process group; one process when none is joined."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def start(device: str) -> Ranks:
    """Join the process group ``torchrun`` set up, NCCL for a CUDA ``device`` and gloo for the CPU (a no-op in one
    process or when already joined)."""
    if launched().world > 1 and not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return current()


def stop() -> None:
    """Leave the process group (a no-op when none is joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def share(local: int, total: int) -> float:
    """The weight of a rank's mean loss over ``local`` of a global batch's ``total`` samples: with gradients summed
    across ranks, the step is the one for the mean over all ``total`` (1.0 in one process)."""
    return local / total if total else 0.0


def broadcast_parameters(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Copy rank 0's values of ``parameters`` to every rank (the seeded builds agree; this makes sure)."""
    if current().world == 1:
        return
    with torch.no_grad():
        for p in parameters:
            dist.broadcast(p.data, src=0)


def sum_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Sum the gradients of the trainable ``parameters`` across ranks, in place, in one all-reduce.

    A parameter with a gradient on some rank but not this one (its share of the batch did not reach it) counts
    zero here; one with a gradient on no rank keeps ``None``, so the optimizer skips it as one process would.
    """
    if current().world == 1:
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    device = params[0].device
    used = torch.tensor([float(p.grad is not None) for p in params], device=device)
    dist.all_reduce(used, op=dist.ReduceOp.MAX)
    params = [p for p, flag in zip(params, used.tolist(), strict=True) if flag]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1).to(device=device, dtype=torch.float32) for p in params])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def sum_values(values: Sequence[float]) -> list[float]:
    """``values`` (figures of each rank's share, e.g. its weighted losses) summed over the ranks in one
    all-reduce; ``values`` themselves in one process."""
    if current().world == 1:
        return list(values)
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    total = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def barrier() -> None:
    """Wait until every rank gets here (a no-op in one process)."""
    if current().world > 1:
        dist.barrier()
