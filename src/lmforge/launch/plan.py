"""Whether ``lmforge train`` re-launches itself under torchrun, and with which shape.

One process by default. Under torchrun when already asked to (``FORCE_TORCHRUN=1``, ``NNODES`` > 1,
``NPROC_PER_NODE`` > 1) or when more than one GPU is visible; never when this process is already a
worker of torchrun, accelerate or deepspeed (``LOCAL_RANK``/``WORLD_SIZE`` set).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from lmforge.errors import LmforgeError

TRUE_WORDS = {"1", "true", "yes", "y", "on"}
DEFAULT_PORT = 29500


@dataclass(frozen=True)
class LaunchPlan:
    nnodes: int
    node_rank: int
    nproc_per_node: int
    master_addr: str
    master_port: int
    join_timeout: int  # seconds the rendezvous waits for every node (rdzv_timeout)

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node


def inside_launcher(env: Mapping[str, str]) -> bool:
    """This process is already a worker (torchrun, accelerate launch, deepspeed)."""
    return "LOCAL_RANK" in env or "TORCHELASTIC_RUN_ID" in env or int(env.get("WORLD_SIZE", "1") or 1) > 1


def plan_launch(env: Mapping[str, str], gpu_count: int, join_timeout: int) -> LaunchPlan | None:
    """The torchrun shape to re-launch with, or None to train in this process."""
    if inside_launcher(env):
        return None
    forced = env.get("FORCE_TORCHRUN", "").strip().lower() in TRUE_WORDS
    nnodes = _positive(env, "NNODES", 1)
    nproc = _positive(env, "NPROC_PER_NODE", max(gpu_count, 1))
    if not (forced or nnodes > 1 or nproc > 1):
        return None
    node_rank = _int(env, "NODE_RANK", 0)
    if not 0 <= node_rank < nnodes:
        raise LmforgeError(
            f"NODE_RANK={node_rank} is not a node of NNODES={nnodes}",
            f"give each node a NODE_RANK from 0 to {nnodes - 1}",
        )
    master_addr = env.get("MASTER_ADDR") or "127.0.0.1"
    if nnodes > 1 and not env.get("MASTER_ADDR"):
        raise LmforgeError(
            f"NNODES={nnodes} needs MASTER_ADDR: the address of the node with NODE_RANK=0",
            "set MASTER_ADDR (and the same MASTER_PORT) on every node",
        )
    port = _int(env, "MASTER_PORT", DEFAULT_PORT if nnodes > 1 else free_port())
    return LaunchPlan(nnodes, node_rank, nproc, master_addr, port, join_timeout)


def free_port() -> int:
    """A port free now on this machine, for a single-node job that named none."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise LmforgeError(f"{name}={raw!r} is not a whole number", f"set {name} to a number, or unset it") from None


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise LmforgeError(f"{name}={value} must be at least 1", f"set {name} to 1 or more, or unset it")
    return value
