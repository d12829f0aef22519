"""Run torch's launcher (torchrun) in this process, and say in one line per rank what went wrong.

In-process, not a subprocess, so its structured results are ours: a worker that fails leaves its
one-line message in torchelastic's error file (worker.py), and ``ChildFailedError.failures`` maps
each failed global rank to it; we print that instead of the wall of ``ChildFailedError`` text, and
return the worker's exit code. A rendezvous that times out (a node that never arrived) becomes one
message naming the missing node. SIGTERM to the launcher reaches every worker (torchrun forwards
it), and they save the same step (reliability/signals.py) before exiting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

from lmforge.launch.plan import LaunchPlan, inside_launcher

LAUNCHER_ENV = "LMFORGE_LAUNCHER"  # set for workers: they report errors to the launcher, not stderr
EXPECTED_ENV = "LMFORGE_EXPECTED_WORLD_SIZE"  # what this node thinks the job's size is (cluster check)
CPP_LOG_ENV = "TORCH_CPP_LOG_LEVEL"
QUIETED_ENV = "LMFORGE_QUIETED_CPP_LOG"  # the launcher set CPP_LOG_ENV itself: workers do not inherit it


def quiet_node_launcher(env: MutableMapping[str, str], debug: bool) -> None:
    """Keep torch's C++ log out of a multi-node launcher's output (not its workers').

    A node waiting for node 0 gets, at every connection retry, torch's C++ warning "TCP client
    failed to connect ... retrying" with ~40 frames of C++ stack; the launcher already says it once
    in words (``rendezvous_message``). c10 reads TORCH_CPP_LOG_LEVEL when torch loads, so this runs
    before anything imports torch. A user's own TORCH_CPP_LOG_LEVEL, and --debug, are left alone.
    """
    if debug or CPP_LOG_ENV in env or inside_launcher(env):
        return
    try:
        several_nodes = int(env.get("NNODES", "1") or 1) > 1
    except ValueError:  # plan_launch names the bad value
        return
    if several_nodes:
        env[CPP_LOG_ENV] = "FATAL"
        env[QUIETED_ENV] = "1"


def torchrun_argv(plan: LaunchPlan, argv: list[str]) -> list[str]:
    """torchrun's own arguments for ``python -m lmforge <argv>`` with this plan (static rendezvous:
    node 0 hosts the store at MASTER_ADDR:MASTER_PORT; ``timeout`` is how long it waits for the rest)."""
    return [
        f"--nnodes={plan.nnodes}",
        f"--node-rank={plan.node_rank}",
        f"--nproc-per-node={plan.nproc_per_node}",
        f"--master-addr={plan.master_addr}",
        f"--master-port={plan.master_port}",
        f"--rdzv-conf=timeout={plan.join_timeout}",
        "--max-restarts=0",  # a failed rank fails the job with its message; --resume restarts it
        "--module",
        "lmforge",
        *argv,
    ]


def relaunch(plan: LaunchPlan, argv: list[str], output_dir: str | None = None) -> int:
    """Launch this node's workers and wait; the return value is the exit code for the user."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = get_args_parser().parse_args(torchrun_argv(plan, argv))
    print(
        f"lmforge: launching {plan.nproc_per_node} process(es) on node {plan.node_rank} of {plan.nnodes} "
        f"(world size {plan.world_size}, rendezvous {plan.master_addr}:{plan.master_port})",
        file=sys.stderr,
        flush=True,
    )
    with _worker_environment(plan), _quiet_elastic_logs():
        try:
            run(args)
        except ChildFailedError as err:
            return report_failures(err.failures)
        except SignalException as err:
            print(f"lmforge: error: {stopped_message(signal.Signals(err.sigval).name, output_dir)}", file=sys.stderr)
            return 128 + int(err.sigval)
        except Exception as err:  # the rendezvous: the store's timeout or connection errors
            if not _is_rendezvous_error(err):
                raise
            print(f"lmforge: error: {rendezvous_message(plan, err)}", file=sys.stderr, flush=True)
            return 1
    return 0


def stopped_message(signame: str, output_dir: str | None) -> str:
    """The launcher got ``signame`` and forwarded it: the workers saved a step and stopped (torchrun
    waits for them); name the checkpoint ``--resume`` continues from."""
    from lmforge.train.reliability.checkpoints import latest_complete_checkpoint

    latest = latest_complete_checkpoint(output_dir) if output_dir else None
    if latest is None:
        return f"training stopped by {signame} (sent to the launcher); no complete checkpoint in {output_dir}"
    return (
        f"training stopped by {signame} (sent to the launcher); latest complete checkpoint {latest} "
        "(run the same command with --resume to continue)"
    )


def report_failures(failures: dict[int, Any]) -> int:
    """One line per failed rank (identical messages once, naming all their ranks); the first
    failure's exit code (128 + signal for a killed worker)."""
    host = socket.gethostname()
    by_message: dict[str, list[int]] = {}
    for global_rank, failure in sorted(failures.items()):
        by_message.setdefault(_failure_message(failure), []).append(global_rank)
    for message, ranks in by_message.items():
        who = "rank" if len(ranks) == 1 else "ranks"
        print(f"lmforge: error: {who} {', '.join(map(str, ranks))} ({host}): {message}", file=sys.stderr, flush=True)
    first = min(failures.values(), key=lambda failure: failure.timestamp)
    code = int(first.exitcode)
    return 128 - code if code < 0 else code or 1


def rendezvous_message(plan: LaunchPlan, err: BaseException) -> str:
    """The store's error as the node it is about."""
    text = str(err)
    where = f"MASTER_ADDR={plan.master_addr} MASTER_PORT={plan.master_port}"
    if plan.node_rank == 0:
        joined = re.search(r"(\d+)/(\d+) clients joined", text)
        count = int(joined.group(1)) if joined else 1
        missing = plan.nnodes - count
        names = "node 1 (NODE_RANK=1)" if plan.nnodes == 2 else f"{missing} of the nodes NODE_RANK=1..{plan.nnodes - 1}"
        return (
            f"{names} never joined: {count} of NNODES={plan.nnodes} nodes arrived within "
            f"rdzv_timeout={plan.join_timeout} s; start it with the same NNODES, {where} and its own NODE_RANK "
            "(and check that this port is reachable from it)"
        )
    return (
        f"node {plan.node_rank} could not reach node 0 (NODE_RANK=0) at {plan.master_addr}:{plan.master_port} "
        f"within rdzv_timeout={plan.join_timeout} s; start node 0 first with the same NNODES and {where}, "
        "and check that the address and port are reachable from this node"
    )


def _failure_message(failure: Any) -> str:
    data = failure.error_file_data if isinstance(failure.error_file_data, dict) else {}
    message = data.get("message")
    if isinstance(message, str) and message and message != "<NONE>":  # torchelastic's "no error file"
        return message
    if failure.exitcode < 0:
        return f"killed by {failure.signal_name()} (exit code {128 - failure.exitcode})"
    return f"exited with code {failure.exitcode} (see its output above)"


def _is_rendezvous_error(err: BaseException) -> bool:
    from torch.distributed import DistError
    from torch.distributed.elastic.rendezvous import RendezvousError

    return isinstance(err, DistError | RendezvousError | TimeoutError)


@contextlib.contextmanager
def _worker_environment(plan: LaunchPlan) -> Iterator[None]:
    """Workers inherit the launcher's environment: tell them who launched them and the expected size
    (and give them torch's C++ log back when ``quiet_node_launcher`` took it from the launcher)."""
    saved = {name: os.environ.get(name) for name in (LAUNCHER_ENV, EXPECTED_ENV, CPP_LOG_ENV)}
    os.environ[LAUNCHER_ENV] = "1"
    os.environ[EXPECTED_ENV] = f"{plan.world_size}:{plan.nnodes}x{plan.nproc_per_node}"
    if os.environ.get(QUIETED_ENV):
        os.environ.pop(CPP_LOG_ENV, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _quiet_elastic_logs() -> Iterator[None]:
    """torchelastic logs each failure as a multi-line error; ours replaces it."""
    logger = logging.getLogger("torch.distributed.elastic")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
