"""For the stages' resume tests: ``lmforge train`` in a child process, SIGKILLed once a chosen
checkpoint is complete (nothing after it is saved), so the test can resume it in-process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml


def train_until_killed(flat: dict[str, Any], config: Path, checkpoint: int, timeout: float = 300) -> None:
    """Write ``flat`` to ``config``, train it in a child and SIGKILL it once ``checkpoint-<N>`` holds
    its completion marker; fail with the child's output if it exits or stalls first."""
    from lmforge.train.reliability.checkpoints import COMPLETE_MARKER

    config.write_text(yaml.safe_dump(flat))
    marker = Path(flat["output_dir"]) / f"checkpoint-{checkpoint}" / COMPLETE_MARKER
    log = config.with_suffix(".log")
    with log.open("w") as handle:
        child = subprocess.Popen(
            [sys.executable, "-m", "lmforge.cli", "train", str(config)], stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while not marker.exists():
                if child.poll() is not None:
                    raise AssertionError(f"training exited early: {log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{marker} never appeared")
                time.sleep(0.2)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL
