"""trainer_log.jsonl: one JSON line per logging step, readable while the run goes on.

Each line has step, total_steps, epoch, loss, lr, elapsed and remaining seconds, plus any extra
fields that ``extra_fields`` (e.g. memory and throughput metrics) returns for that step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

LOG_NAME = "trainer_log.jsonl"


class JsonlLogCallback(TrainerCallback):
    def __init__(self, output_dir: str, extra_fields: Callable[[Any], dict[str, Any]] | None = None) -> None:
        self.path = Path(output_dir) / LOG_NAME
        self.extra_fields = extra_fields
        self.start = time.monotonic()
        self.start_step = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.start = time.monotonic()
        self.start_step = state.global_step  # non-zero when resuming
        if not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if state.global_step == 0 and self.path.exists():
            self.path.unlink()  # a fresh run starts a fresh log; a resumed run appends
        elif state.global_step > 0 and self.path.exists():
            self._truncate_after(state.global_step)

    def _truncate_after(self, step: int) -> None:
        """A resumed run re-logs steps after its checkpoint: drop the dead run's later lines."""
        kept = [line for line in self.path.read_text().splitlines() if json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        elapsed = time.monotonic() - self.start
        done = max(state.global_step - self.start_step, 1)
        remaining = elapsed / done * max(state.max_steps - state.global_step, 0)
        record: dict[str, Any] = {
            "step": state.global_step,
            "total_steps": state.max_steps,
            "epoch": round(state.epoch or 0.0, 4),
        }
        for key, value in logs.items():
            record["lr" if key == "learning_rate" else key] = value
        record.update(elapsed=round(elapsed, 3), remaining=round(remaining, 3))
        if self.extra_fields is not None:
            record.update(self.extra_fields(state))
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
