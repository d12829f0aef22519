"""The cluster check: before training, every rank proves it belongs to the job it thinks it is in.

A multi-process run that is wrong somewhere (a node launched with another NPROC_PER_NODE, a rank
whose output_dir is not writable, another torch on one node, a network that drops collectives)
otherwise hangs at the first collective or fails hours later on one rank. Here every rank reports
what it sees, the reports are gathered, and every rank raises the same error naming the rank, the
host and the cause. Costs one all-reduce and one all-gather (well under a second on loopback).
Runs in ``run_training`` right after the training arguments exist (they create the process group)
and in ``lmforge doctor --cluster``.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from lmforge.distributed import gather_objects
from lmforge.errors import LmforgeError

EXPECTED_ENV = "LMFORGE_EXPECTED_WORLD_SIZE"  # set by lmforge's launcher: "<size>:<nodes>x<procs>"


def check_cluster(cfg: Any, timeout_s: float, shared_output: bool = False) -> dict[str, Any]:
    """Raise LmforgeError (the same on every rank) when the job is inconsistent; return a summary.

    ``shared_output``: the run writes per-rank files into output_dir (DeepSpeed checkpoints), so
    every rank must see the same directory.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return summary([_report(cfg)])
    _test_all_reduce(dist, timeout_s)
    token = gather_objects(uuid.uuid4().hex)[0] if shared_output else None
    if token is not None and dist.get_rank() == 0:
        _touch(_probe_dir(Path(cfg.train.output_dir)) / f".lmforge-shared-{token}")
    dist.barrier()
    reports = gather_objects(_report(cfg, token))
    dist.barrier()
    if token is not None and dist.get_rank() == 0:
        (_probe_dir(Path(cfg.train.output_dir)) / f".lmforge-shared-{token}").unlink(missing_ok=True)
    problems = cluster_problems(reports, dist.get_world_size())
    if problems:
        raise LmforgeError(
            "cluster check failed: " + "; ".join(problems),
            "fix the rank named above (every node needs the same NNODES, NPROC_PER_NODE, software "
            "versions and a writable output_dir), then run the same command again",
        )
    return summary(reports)


def summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """What run_manifest.json records: world size, nodes, and where each rank ran."""
    keys = ("rank", "node", "local_rank", "host")
    return {
        "world_size": len(reports),
        "nodes": len({r["node"] for r in reports}),
        "ranks": [{key: r[key] for key in keys} for r in reports],
    }


def cluster_problems(reports: list[dict[str, Any]], world_size: int) -> list[str]:
    """Every inconsistency in the gathered reports, each naming the rank and host (pure: tested alone)."""
    problems: list[str] = []
    ranks = sorted(r["rank"] for r in reports)
    if ranks != list(range(world_size)):
        problems.append(f"ranks {ranks} are not 0..{world_size - 1}")
    reference = reports[0]
    for r in reports:
        who = f"rank {r['rank']} ({r['host']}, node {r['node']})"
        if r["world_size"] != world_size:
            problems.append(f"{who} sees WORLD_SIZE={r['world_size']} but the job has {world_size} processes")
        expected = r.get("expected")
        if expected and int(expected.split(":")[0]) != world_size:
            shape = expected.split(":")[1]
            problems.append(
                f"{who} was launched for world size {expected.split(':')[0]} (NNODES x NPROC_PER_NODE = {shape}) "
                f"but the job has {world_size} processes: NNODES and NPROC_PER_NODE must be the same on every node"
            )
        for what in ("output_dir", "cache"):
            if r[what] is not None:
                problems.append(f"{who}: {r[what]}")
        if r.get("shared") is False:
            problems.append(
                f"{who} does not see rank 0's output_dir {r['output_path']}: DeepSpeed writes each rank's part "
                "of a checkpoint there, so it must be one shared folder (NFS, Lustre, ...) on every node"
            )
        ours = reference["versions"]
        differ = {k: (ours.get(k), v) for k, v in r["versions"].items() if ours.get(k) != v}
        if differ:
            listed = ", ".join(f"{k} {b} (rank 0: {a})" for k, (a, b) in sorted(differ.items()))
            problems.append(f"{who} runs other software versions: {listed}")
    return problems


def _test_all_reduce(dist: Any, timeout_s: float) -> None:
    import torch

    from lmforge.distributed import _device, rank_label

    tensor = torch.ones(1, device=_device(dist))
    work = dist.all_reduce(tensor, async_op=True)
    try:
        work.wait(timeout=timedelta(seconds=timeout_s))
    except RuntimeError as err:
        raise LmforgeError(
            f"cluster check failed on {rank_label()}: a test all-reduce did not complete within "
            f"{timeout_s:.0f} s ({err})",
            "a rank cannot reach the others: check the network between the nodes (MASTER_ADDR, firewalls, "
            "GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME)",
        ) from None
    if int(tensor.item()) != dist.get_world_size():
        raise LmforgeError(
            f"cluster check failed on {rank_label()}: a test all-reduce summed to {int(tensor.item())}, "
            f"not the world size {dist.get_world_size()}",
            "the process group is broken: relaunch every node",
        )


def _report(cfg: Any, token: str | None = None) -> dict[str, Any]:
    from lmforge.data.cache import cache_root
    from lmforge.distributed import node_rank, rank
    from lmforge.train.reliability.manifest import package_versions

    output = Path(cfg.train.output_dir)
    cache = Path(cfg.data.tokenized_path) if cfg.data.tokenized_path else cache_root()
    report = {
        "rank": rank(),
        "local_rank": int(os.environ.get("LOCAL_RANK", "0")),
        "node": node_rank(),
        "host": socket.gethostname(),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "expected": os.environ.get(EXPECTED_ENV),
        "versions": package_versions(),
        "output_dir": _writable("output_dir", output),
        "cache": _writable("the data cache" if not cfg.data.tokenized_path else "tokenized_path", cache),
        "output_path": str(output),
    }
    if token is not None:
        report["shared"] = (_probe_dir(output) / f".lmforge-shared-{token}").exists()
    return report


def _writable(what: str, path: Path) -> str | None:
    """None when this rank can create files at ``path`` (or where it will be created), else why not.

    A real write, not ``os.access``: root passes every access check, and read-only mounts lie.
    """
    probe = _probe_dir(path)
    if not probe.is_dir():
        return f"{what} {path} cannot be created: {probe} is a file, not a folder"
    try:
        handle, name = tempfile.mkstemp(prefix=".lmforge-probe-", dir=probe)
        os.close(handle)
        os.unlink(name)
    except OSError as err:
        return f"{what} {path} is not writable here ({err.strerror}: {probe})"
    return None


def _probe_dir(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (nothing is created by the check)."""
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _touch(path: Path) -> None:
    try:
        path.touch()
    except OSError:
        pass  # the writability report names the cause
