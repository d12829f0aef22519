"""Reliability and observability for training runs (issue 8); see docs/reliability.md.

Wiring, in run_training:

1. before loading weights: ``resume = resolve_resume_checkpoint(cfg)``,
   ``check_output_dir(cfg, resuming=resume is not None)``, ``requested_trackers(cfg)`` (validates);
2. the Trainer class mixes in ``ReliableTrainerMixin`` (it installs the ``CheckpointWriter``: marked,
   rotated, pickle-free checkpoints; NaN guard; step metrics) and gets
   ``skip_nonfinite_steps=cfg.train.skip_nonfinite_steps``;
3. TrainingArguments get ``report_to="none"``; the trackers come from ``reliability_callbacks``;
4. ``callbacks=[*own_callbacks, *reliability_callbacks(cfg, datasets=...)]`` (signal callback last);
5. ``trainer.train(resume_from_checkpoint=resume)``; a signal makes it raise TrainingInterrupted;
6. the whole run inside ``lmforge.train.isolation.process_state_scope`` (signal handlers,
   environment, logging, open tracker runs restored, also when training raises).
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from lmforge.train.reliability.checkpoints import (
    is_complete_checkpoint,
    latest_complete_checkpoint,
    resolve_resume_checkpoint,
)
from lmforge.train.reliability.guards import check_output_dir
from lmforge.train.reliability.manifest import ManifestCallback
from lmforge.train.reliability.signals import SignalCheckpointCallback, TrainingInterrupted
from lmforge.train.reliability.trackers import requested_trackers, tracker_callbacks
from lmforge.train.reliability.trainer_mixin import ReliableTrainerMixin
from lmforge.train.reliability.writer import CheckpointWriter


def reliability_callbacks(
    cfg: Any, datasets: dict[str, Any] | None = None, cluster: dict[str, Any] | None = None
) -> list[TrainerCallback]:
    """Trackers, the run manifest and the signal handler, in the order they must run.

    ``datasets`` ({"train": ds, "eval": ds}) are fingerprinted into run_manifest.json; when
    omitted, the train dataloader's dataset is used. ``cluster``: the cluster check's summary
    (world size, nodes, ranks) for the manifest of a multi-process run. Append the result after your own callbacks:
    the signal callback raises TrainingInterrupted from ``on_train_end``.
    """
    return [*tracker_callbacks(cfg), ManifestCallback(cfg, datasets, cluster), SignalCheckpointCallback()]


__all__ = [
    "CheckpointWriter",
    "ReliableTrainerMixin",
    "TrainingInterrupted",
    "check_output_dir",
    "is_complete_checkpoint",
    "latest_complete_checkpoint",
    "reliability_callbacks",
    "requested_trackers",
    "resolve_resume_checkpoint",
]
