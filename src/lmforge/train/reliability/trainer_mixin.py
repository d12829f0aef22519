"""``ReliableTrainerMixin``: the three behaviours that need the Trainer itself, not a callback.

Mix it in before the Trainer class (``class LmforgeTrainer(ReliableTrainerMixin, Trainer)``; it
works with trl trainers too):

- atomic checkpoints: ``_save_checkpoint`` runs transformers' own save into a staging directory
  (so DeepSpeed/FSDP/PEFT saving stays upstream's), then checkpoints.publish_checkpoint renames it
  into place; disk space is checked first;
- the non-finite loss guard (callbacks never see the per-micro-batch loss);
- throughput/memory/MFU fields merged into every training log, so trainer_log.jsonl and every
  tracker receive them (callbacks run after the trackers, so they could not add fields).

It overrides ``_save_checkpoint``, a private method of transformers 5.23's Trainer: the one place a
checkpoint's directory is chosen. Re-check it when upgrading transformers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from transformers.trainer_utils import rotate_checkpoints

from lmforge.train.reliability.checkpoints import (
    STAGING_DIR,
    check_disk_space,
    clear_staging,
    estimate_checkpoint_bytes,
    publish_checkpoint,
)
from lmforge.train.reliability.guards import NonFiniteLossGuard
from lmforge.train.reliability.metrics import StepMetrics


class ReliableTrainerMixin:
    """Atomic checkpoints, NaN/Inf guard and step metrics for a ``transformers.Trainer`` subclass.

    Extra keyword argument: ``skip_nonfinite_steps`` (the config key of the same name).
    """

    def __init__(self, *args: Any, skip_nonfinite_steps: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.nonfinite_guard = NonFiniteLossGuard(skip=skip_nonfinite_steps)
        self.step_metrics = StepMetrics(world_size=int(getattr(self.args, "world_size", 1) or 1))

    def training_step(
        self, model: torch.nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        self.step_metrics.count_batch(inputs)
        loss = super().training_step(model, inputs, num_items_in_batch)  # type: ignore[misc]
        self.nonfinite_guard.check(loss, model, self.state.global_step + 1, self.state.epoch)
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # training logs only; eval and the final summary keep upstream's fields
            logs.update(self.step_metrics.collect(self.model))
            if self.nonfinite_guard.skipped_steps:
                logs["skipped_nonfinite_steps"] = self.nonfinite_guard.skipped_steps
        super().log(logs, start_time)  # type: ignore[misc]

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        run_dir = Path(self._get_output_dir(trial=trial))  # type: ignore[attr-defined]
        step = self.state.global_step
        final = run_dir / f"checkpoint-{step}"
        staging_root = run_dir / STAGING_DIR
        args = self.args
        if args.should_save:
            clear_staging(run_dir)
            check_disk_space(run_dir, estimate_checkpoint_bytes(self.model, not args.save_only_model), final.name)
        original_output_dir = args.output_dir
        args.output_dir = str(staging_root) if trial is None else os.path.join(staging_root, run_dir.name)
        try:
            staged = Path(self._get_output_dir(trial=trial)) / final.name  # type: ignore[attr-defined]
            super()._save_checkpoint(model, trial)  # type: ignore[misc]
        finally:
            args.output_dir = original_output_dir
        self.accelerator.wait_for_everyone()  # type: ignore[attr-defined]  # every rank's shards are written
        if not args.should_save:
            return
        self._retarget_best_checkpoint(staged, final)
        publish_checkpoint(staged, final, step)
        rotate_checkpoints(
            output_dir=str(run_dir),
            save_total_limit=args.save_total_limit,
            best_model_checkpoint=self.state.best_model_checkpoint,
            use_mtime=True,
        )

    def _retarget_best_checkpoint(self, staged: Path, final: Path) -> None:
        """Upstream records the best checkpoint under the staging path; point it at the published one."""
        best = self.state.best_model_checkpoint
        if best is not None and Path(best) == staged:
            self.state.best_model_checkpoint = str(final)
            self.state.save_to_json(str(staged / "trainer_state.json"))
