"""Never train past the step target on resume.

transformers 5.23 runs at least one optimiser step after resuming, even from a checkpoint that is
already at ``max_steps`` (its loop checks the target only after a step): a job relaunched after the
last checkpoint was written but before the final outputs were (killed in the final save or
evaluation) would train one step more, each relaunch. This callback stops such a run when it
begins, after the checkpoint's weights and state are loaded; run_training then writes the final
outputs from them.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class TargetAlreadyReached(Exception):
    """Raised from ``on_train_begin`` when the resumed state is at or past its step target."""

    def __init__(self, step: int, target: int) -> None:
        super().__init__(f"resumed at step {step}, target {target}")
        self.step = step
        self.target = target


class StopAtTargetCallback(TrainerCallback):
    """Put it first among lmforge's callbacks, so nothing else has started when it raises."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            raise TargetAlreadyReached(state.global_step, state.max_steps)
