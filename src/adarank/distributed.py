"""Several devices through PyTorch's own distributed stack: modules are split across ranks.

Launched with ``torchrun --nproc-per-node N -m adarank predict ...`` (or ``adarank predict
--devices N``, which starts torchrun itself). Every rank loads the model on its own device, scores
every N-th module, and rank 0 gathers the scores and writes the plan. Noise is seeded per module
name, so which rank scores a module does not change its scores: the plan equals a one-device plan.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any, Sequence, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_if_launched(device_type: str) -> tuple[int, int]:
    """(rank, world size); joins the process group when started by torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if launched_world_size() <= 1:
        return 0, 1
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """Every ``world``-th item from ``rank``: blocks late in the stack (cheaper with prefix replay)
    and early ones (dearer) are dealt evenly."""
    return list(items[rank::world])


def gather(items: list[Any], world: int) -> list[Any]:
    """All ranks' items, on every rank (objects are pickled; scores are small)."""
    if world <= 1:
        return items
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, items)
    return [x for part in parts for x in part]


def local_device(requested: str | None) -> str | None:
    """Under torchrun, ``auto``/``cuda`` means this process's own GPU."""
    if launched_world_size() > 1 and torch.cuda.is_available() and requested in (None, "auto", "cuda"):
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return requested


def close_process_group(*, finished: bool) -> None:
    """Leave the process group, if this process joined one.

    After a run that ``finished`` on this rank, a gloo group first waits (at most a minute) until every rank has
    got this far: a rank that tears gloo down while another still reads from it can abort with "terminate called
    without an active exception", failing a run whose plan was already written. After a failure no rank waits,
    since the others may never arrive.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if finished and dist.get_world_size() > 1 and dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=60))
    except RuntimeError:
        pass  # a rank that failed or left: tear down regardless, its own error is what the user sees
    finally:
        dist.destroy_process_group()
