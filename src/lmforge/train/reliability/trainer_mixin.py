"""``ReliableTrainerMixin``: the behaviours that need the Trainer itself, not a callback.

Mix it in before the Trainer class (``class LmforgeTrainer(ReliableTrainerMixin, Trainer)``; it
works with trl trainers too):

- trustworthy checkpoints: it installs a ``CheckpointWriter`` (writer.py) and tells it, from the
  public ``save_model``, when transformers is about to write ``checkpoint-N``; every save it makes
  (checkpoints and the final one) keeps no pickled ``training_args.bin`` and gets the user's umask;
- the non-finite loss guard (callbacks never see the per-micro-batch loss);
- throughput/memory/MFU fields merged into every training log, so trainer_log.jsonl and every
  tracker receive them (callbacks run after the trackers, so they could not add fields).

- DataLoader workers that leave a SIGTERM/SIGINT to the main process (signals.py), for the train and
  eval loaders.

It redefines only public Trainer methods (``training_step``, ``log``, ``save_model``,
``get_train_dataloader``, ``get_eval_dataloader``); a test walks the MRO to keep it so.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from lmforge.atomic import umask_permissions
from lmforge.train.reliability.checkpoints import checkpoint_step
from lmforge.train.reliability.guards import NonFiniteLossGuard
from lmforge.train.reliability.metrics import StepMetrics
from lmforge.train.reliability.signals import keep_workers_running
from lmforge.train.reliability.writer import CheckpointWriter, replace_pickled_args


class ReliableTrainerMixin:
    """Atomic checkpoints, NaN/Inf guard and step metrics for a ``transformers.Trainer`` subclass.

    Extra keyword arguments: ``skip_nonfinite_steps`` (the config key of the same name) and
    ``checkpoint_writer`` (a ``CheckpointWriter`` subclass instance, for later save strategies).
    """

    def __init__(
        self,
        *args: Any,
        skip_nonfinite_steps: bool = False,
        checkpoint_writer: CheckpointWriter | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.checkpoint_writer = checkpoint_writer or CheckpointWriter()
        self.add_callback(self.checkpoint_writer)  # type: ignore[attr-defined]
        self.nonfinite_guard = NonFiniteLossGuard(skip=skip_nonfinite_steps)
        self.step_metrics = StepMetrics(world_size=int(getattr(self.args, "world_size", 1) or 1))

    def training_step(
        self, model: torch.nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        self.step_metrics.count_batch(inputs)
        loss = super().training_step(model, inputs, num_items_in_batch)  # type: ignore[misc]
        self.nonfinite_guard.check(loss, model, self.state.global_step + 1, self.state.epoch)
        return loss

    def get_train_dataloader(self) -> Any:
        return keep_workers_running(super().get_train_dataloader())  # type: ignore[misc]

    def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
        return keep_workers_running(super().get_eval_dataloader(eval_dataset))  # type: ignore[misc]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # training logs only; eval and the final summary keep upstream's fields
            logs.update(self.step_metrics.collect(self.model, optimizer=self.optimizer))
            if self.nonfinite_guard.skipped_steps:
                logs["skipped_nonfinite_steps"] = self.nonfinite_guard.skipped_steps
        super().log(logs, start_time)  # type: ignore[misc]

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        target = Path(output_dir or self.args.output_dir)  # type: ignore[attr-defined]
        if _internal_call and output_dir is not None and checkpoint_step(target) is not None:
            # transformers' _save_checkpoint starts here; the writer completes it in on_save.
            self.checkpoint_writer.before_save(self.args, target, self.model)  # type: ignore[attr-defined]
            super().save_model(output_dir, _internal_call)  # type: ignore[misc]
            return
        saving = self.args.should_save  # type: ignore[attr-defined]
        # Every rank calls save_model under FSDP/DeepSpeed (to gather the weights); only the saving
        # one writes, and only it looks at output_dir, where rank 0 may be renaming files meanwhile.
        with umask_permissions(target) if saving else contextlib.nullcontext():
            super().save_model(output_dir, _internal_call)  # type: ignore[misc]
            if saving:
                replace_pickled_args(target, self.args)  # type: ignore[attr-defined]
