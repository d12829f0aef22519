"""SIGTERM saves and stops at the step boundary; NaN/Inf loss stops or skips; output_dir and disk guards."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch
from tiny_run import build_trainer, losses_by_step
from transformers import TrainerCallback

from lmforge.config import build_config
from lmforge.errors import LmforgeError
from lmforge.train.reliability import (
    TrainingInterrupted,
    check_output_dir,
    is_complete_checkpoint,
    latest_complete_checkpoint,
    resolve_resume_checkpoint,
)
from lmforge.train.reliability.checkpoints import check_disk_space
from lmforge.train.reliability.signals import SignalCheckpointCallback


class SignalAt(TrainerCallback):
    """Sends a signal to this process while step ``step`` is being computed."""

    def __init__(self, step: int, signum: int = signal.SIGTERM) -> None:
        self.step, self.signum = step, signum

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step + 1 == self.step:
            os.kill(os.getpid(), self.signum)


def test_sigterm_saves_current_step_and_resume_continues_from_it(
    tiny_model_dir: Path, tmp_path: Path, reference_losses: dict[int, float]
) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    trainer = build_trainer(tiny_model_dir, tmp_path, save_steps=4, callbacks=[SignalAt(7), SignalCheckpointCallback()])
    with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM at step 7") as err:
        trainer.train()
    assert "--resume" in str(err.value) and err.value.checkpoint == str(tmp_path / "checkpoint-7")
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored after training
    assert is_complete_checkpoint(tmp_path / "checkpoint-7")
    assert latest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-7"

    cfg = build_config({"output_dir": str(tmp_path), "resume_from_checkpoint": "auto"})
    resumed = build_trainer(tiny_model_dir, tmp_path, save_steps=4, callbacks=[SignalCheckpointCallback()])
    resumed.train(resume_from_checkpoint=resolve_resume_checkpoint(cfg))
    losses = losses_by_step(resumed)
    for step in range(8, 21):
        assert losses[step] == pytest.approx(reference_losses[step], abs=1e-6), step


class SignalGroupAt(TrainerCallback):
    """SIGTERM, as a scheduler signals a whole process group (Slurm's scancel, ``kill -TERM -PGID``),
    to this process and the DataLoader workers it started, at the start of step N."""

    def __init__(self, step: int) -> None:
        self.step, self.before = step, {child.pid for child in psutil.Process().children()}

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step + 1 == self.step:
            workers = [child.pid for child in psutil.Process().children() if child.pid not in self.before]
            assert workers, "the DataLoader workers are running"
            # From another process, as a scheduler sends it (torch's worker exits quietly on its parent's).
            subprocess.run(["kill", "-TERM", *map(str, [*workers, os.getpid()])], check=True)


def test_sigterm_to_the_process_group_with_dataloader_workers_still_saves(tiny_model_dir: Path, tmp_path: Path) -> None:
    """torch's worker dies on a SIGTERM not sent by its parent; the main process then failed with
    "DataLoader worker is killed by signal" instead of saving. Workers now leave the stop to it."""
    trainer = build_trainer(tiny_model_dir, tmp_path, save_steps=100, dataloader_num_workers=2,
                            callbacks=[SignalGroupAt(3), SignalCheckpointCallback()])  # fmt: skip
    with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM at step 3"):
        trainer.train()
    assert is_complete_checkpoint(tmp_path / "checkpoint-3")


def test_second_signal_exits_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    callback = SignalCheckpointCallback()
    callback._handle(signal.SIGINT, None)
    assert callback.received == signal.SIGINT and not exits
    callback._handle(signal.SIGINT, None)
    assert exits == [128 + signal.SIGINT]


def _nan_at(trainer: Any, step: int) -> None:
    upstream = trainer.compute_loss

    def compute_loss(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        loss = upstream(model, inputs, *args, **kwargs)
        return loss * float("nan") if trainer.state.global_step + 1 == step else loss

    trainer.compute_loss = compute_loss


def test_nan_loss_stops_the_run_naming_the_step(tiny_model_dir: Path, tmp_path: Path) -> None:
    trainer = build_trainer(tiny_model_dir, tmp_path, max_steps=8, save_steps=4)
    _nan_at(trainer, 6)
    with pytest.raises(LmforgeError, match=r"loss is nan at step 6 .*skip_nonfinite_steps: true"):
        trainer.train()
    assert latest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-4"


def test_skip_nonfinite_steps_leaves_weights_untouched_for_that_step(tiny_model_dir: Path, tmp_path: Path) -> None:
    trainer = build_trainer(tiny_model_dir, tmp_path, max_steps=6, save_steps=100, skip_nonfinite_steps=True)
    _nan_at(trainer, 4)
    snapshots: dict[int, torch.Tensor] = {}

    class Snapshot(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            snapshots[state.global_step] = model.model.norm.weight.detach().clone()

    trainer.add_callback(Snapshot())
    trainer.train()
    assert torch.equal(snapshots[3], snapshots[4])  # the NaN step changed nothing
    assert not torch.equal(snapshots[4], snapshots[5])  # training went on
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged[-1]["skipped_nonfinite_steps"] == 1
    assert set(losses_by_step(trainer)) == set(range(1, 7))


def test_output_dir_holding_a_run_refuses_without_overwrite(tmp_path: Path) -> None:
    cfg = build_config({"output_dir": str(tmp_path)})
    check_output_dir(cfg, resuming=False)  # empty: fine
    (tmp_path / "checkpoint-4").mkdir()
    with pytest.raises(LmforgeError, match="already holds a training run.*overwrite_output_dir"):
        check_output_dir(cfg, resuming=False)
    check_output_dir(cfg, resuming=True)
    check_output_dir(build_config({"output_dir": str(tmp_path), "overwrite_output_dir": True}), resuming=False)


def test_resume_values(tmp_path: Path) -> None:
    def resolve(value: Any) -> str | None:
        return resolve_resume_checkpoint(build_config({"output_dir": str(tmp_path), "resume_from_checkpoint": value}))

    assert resolve(None) is None
    assert resolve("auto") is None  # nothing yet: start fresh
    assert resolve("true") is None  # what `--resume` sets
    assert resolve(True) is None
    (tmp_path / "checkpoint-3").mkdir()  # torn: no marker, no trainer_state.json
    with pytest.raises(LmforgeError, match="not a complete checkpoint"):
        resolve(str(tmp_path / "checkpoint-3"))
    assert resolve("auto") is None  # the torn directory is not a candidate


def test_disk_space_check_names_the_checkpoint_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(LmforgeError, match=r"not enough disk space to save checkpoint-8 .*save_total_limit"):
        check_disk_space(tmp_path, 10**18, "checkpoint-8")
    check_disk_space(tmp_path / "not" / "yet", 1, "checkpoint-1")
