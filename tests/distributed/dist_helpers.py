"""Helpers for multi-process runs for the distributed tests: ``lmforge train`` launched as a user launches it
(environment variables, torchrun underneath), with tests/distributed/observer watching each rank."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

OBSERVER = Path(__file__).parent / "observer"
REPO = Path(__file__).resolve().parents[2]
# Eight samples, each with a marker the observer finds in the decoded batches.
RECORDS = [{"instruction": f"Repeat sample-{i}.", "output": f"sample-{i} " * (1 + i % 3)} for i in range(8)]


def base_config(model: Path, data: Path, out: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "model_name_or_path": str(model),
        "dataset": str(data),
        "template": "chatml",
        "cutoff_len": 32,
        "output_dir": str(out),
        "per_device_train_batch_size": 1,
        "learning_rate": 1e-2,
        "num_train_epochs": 1,
        "logging_steps": 1,
        "save_steps": 100,
        "plot_loss": False,
        "lr_scheduler_type": "constant",
        "preprocessing_num_workers": 1,
        "template_checks": "off",
        "finetuning_type": "full",
        **overrides,
    }


def write_config(path: Path, flat: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(flat))
    return path


def worker_env(tmp: Path, observe: Path | None = None, out: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of one launched node: files of every tool inside ``tmp``."""
    env = dict(os.environ)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "NNODES", "NODE_RANK"):
        env.pop(name, None)
    env.update(
        OMP_NUM_THREADS="1",
        TMPDIR=str(tmp),  # torchrun's /tmp/torchelastic_* folders
        LMFORGE_HOME=str(tmp / "home"),
        HF_DATASETS_CACHE=str(tmp / "hf-datasets"),
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join([str(OBSERVER), str(REPO / "src")]),
        TORCH_EXTENSIONS_DIR=os.environ.get("TORCH_EXTENSIONS_DIR", str(REPO / ".venv" / "torch_extensions")),
    )
    if observe is not None:
        observe.mkdir(parents=True, exist_ok=True)
        env.update(LMFORGE_OBSERVE=str(observe), LMFORGE_OBSERVE_OUT=str(out))
    env.update(extra)
    return env


# accelerate's own launcher with two processes; --multi_gpu is its torchrun path, which runs on CPU
# (gloo) too; its --cpu path wants MPI for more than one process. Port 0: a free one.
TORCHRUN_TWO = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]  # plain torchrun, a free port
ACCELERATE_TWO = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                  "--main_process_port", "0", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip


def launch(config: Path, env: dict[str, str], *args: str, cwd: Path | None = None, timeout: int = 300,
           launcher: list[str] | None = None) -> Any:  # fmt: skip
    """``lmforge train config *args`` as a user runs it, or under ``python <launcher> -m lmforge``."""
    return subprocess.run(
        [sys.executable, *(launcher or []), "-m", "lmforge", "train", str(config), *args],
        env=env,
        cwd=cwd or config.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(config: Path, env: dict[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """``lmforge train config`` in the background, its output in ``log`` (a file, not a pipe nobody
    reads while the other node runs)."""
    with log.open("w") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "lmforge", "train", str(config)],
            env=env,
            cwd=cwd or config.parent,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def wait_nodes(nodes: list[subprocess.Popen], logs: list[Path], timeout: int) -> list[str]:
    """Wait for every node and return their logs; past ``timeout`` seconds, fail with the stacks
    of every process of every node (the observer's SIGUSR2 handler) instead of hanging."""
    import time

    import psutil
    import pytest

    deadline = time.monotonic() + timeout
    try:
        for node in nodes:
            node.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        tree = [p for node in nodes for p in [psutil.Process(node.pid), *psutil.Process(node.pid).children(True)]]
        for process in tree:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGUSR2)
        time.sleep(3)
        for process in tree:
            with contextlib.suppress(psutil.Error):
                process.kill()
        stacks = "\n".join(f"== {log.name}\n{log.read_text(errors='replace')[-12000:]}" for log in logs)
        pytest.fail(f"nodes still running after {timeout} s; processes: {[p.pid for p in tree]}\n{stacks}")
    return [log.read_text(errors="replace") for log in logs]


def observed(observe: Path) -> dict[int, dict[str, Any]]:
    return {int(p.stem.removeprefix("rank")): json.loads(p.read_text()) for p in observe.glob("rank*.json")}


def samples_per_step(seen: dict[int, dict[str, Any]]) -> dict[int, list[str]]:
    """step → markers of the samples every rank trained on in that step."""
    import re

    steps: dict[int, list[str]] = {}
    for record in seen.values():
        for step, *rows in record["steps"]:
            for row in rows:
                steps.setdefault(int(step), []).append(re.search(r"Repeat (sample-\d+)", row).group(1))
    return steps
