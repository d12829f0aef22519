"""Rank helpers for runs under torchrun / accelerate / deepspeed: who am I, and do all ranks agree.

Every helper is a no-op in a single process (no process group), so the single-process path pays
nothing. Collectives go over the process group transformers created (gloo on CPU, nccl on GPU); a
CPU tensor is used on gloo, the current CUDA device on nccl.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def world_size() -> int:
    """Processes in the job: the process group's size, else torchrun's WORLD_SIZE, else 1."""
    dist = _dist()
    if dist is not None:
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    dist = _dist()
    if dist is not None:
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def node_rank() -> int:
    """The node's index: torchrun's GROUP_RANK, else NODE_RANK, else 0."""
    return int(os.environ.get("GROUP_RANK", os.environ.get("NODE_RANK", "0")))


def rank_label() -> str:
    """``rank 1 (host)`` for messages; empty in a single process."""
    if world_size() <= 1:
        return ""
    return f"rank {rank()} ({socket.gethostname()})"


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on at least one (a stop or NaN agreed at a step)."""
    return max_across_ranks(int(flag)) > 0


def max_across_ranks(value: int) -> int:
    dist = _dist()
    if dist is None:
        return value
    import torch

    tensor = torch.tensor([value], dtype=torch.int64, device=_device(dist))
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def sum_across_ranks(tensor: Any) -> Any:
    """``tensor`` summed over every rank, detached (a single process: itself, detached): for a
    statistic that must be the global batch's, as one process with the whole batch computes it."""
    dist = _dist()
    total = tensor.detach()
    if dist is None:
        return total
    total = total.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order (a single process: ``[value]``)."""
    dist = _dist()
    if dist is None:
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def raise_agreed(error: Exception | None) -> None:
    """Raise on every rank when any rank has an ``error`` (the lowest rank's, naming it), so a
    problem one rank finds (its disk is full) stops all of them at the same point instead of
    leaving the others at the next collective. One ``all_gather_object``; a single process raises
    its own error unchanged."""
    from lmforge.errors import LmforgeError

    found = gather_objects(None if error is None else (str(getattr(error, "message", error)),
                                                       getattr(error, "hint", None), rank_label()))  # fmt: skip
    if len(found) == 1:
        if error is not None:
            raise error
        return
    first = next((item for item in found if item is not None), None)
    if first is not None:
        message, hint, where = first
        raise LmforgeError(f"{message} (on {where})", hint) from error


_TIMED_OUT = re.compile(r"Timed out waiting \d+ms|collective operation timeout")
_PEER_GONE = re.compile(r"Connection (closed|reset) by peer|communicator was aborted")


def collective_failure(err: BaseException, ddp_timeout: int) -> Exception | None:
    """A collective's gloo/NCCL error as a message for the user (or None for any other error).

    One rank that stops (a crash, a signal, a stall) leaves the others in a collective: they wait
    ``ddp_timeout`` seconds, or see the connection close; torch raises a RuntimeError with C++ text.
    """
    from lmforge.errors import LmforgeError

    if world_size() <= 1 or not isinstance(err, RuntimeError):
        return None
    text = str(err)
    if _TIMED_OUT.search(text):
        return LmforgeError(
            f"waited longer than ddp_timeout={ddp_timeout} s for the other ranks in a collective: one of "
            "them stopped or is far behind (its own message says why)",
            "fix that rank; raise ddp_timeout if one rank legitimately takes that long (a long save or evaluation)",
        )
    if _PEER_GONE.search(text):
        return LmforgeError(
            "another rank left during a collective (it failed, timed out or was stopped: its own message says why)"
        )
    return None


def barrier() -> None:
    dist = _dist()
    if dist is not None:
        dist.barrier()


def prepare_once(build: Callable[[bool], T]) -> T:
    """Run ``build(main)`` on the global main process first, then on each other node's local main,
    then on the rest. ``main`` is True only on global rank 0, the one that may rebuild shared work
    (``overwrite_cache``); the others load what it wrote, or, on a node that does not share the
    file system, its local main builds the node's copy once, before its other processes load it.
    Two barriers; none in a single process.
    """
    dist = _dist()
    if dist is None:
        return build(True)
    main, local_main = dist.get_rank() == 0, local_rank() == 0
    result: Any = build(True) if main else None
    dist.barrier()
    if not main and local_main:
        result = build(False)
    dist.barrier()
    if not local_main:
        result = build(False)
    return result


def _dist() -> Any:
    """torch.distributed when a process group is up, else None."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def _device(dist: Any) -> Any:
    import torch

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
