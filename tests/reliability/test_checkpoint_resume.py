"""Trustworthy checkpoints and exact resume on a bare Trainer + ReliableTrainerMixin (tiny model, fp32 CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_run import LOSS_LOG, build_trainer, losses_by_step

from lmforge.train.reliability import is_complete_checkpoint, latest_complete_checkpoint
from lmforge.train.reliability.checkpoints import COMPLETE_MARKER

HERE = Path(__file__).resolve().parent


def _wait_for(path: Path, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"training exited early: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.2)


def test_sigkill_after_checkpoint_resume_reproduces_uninterrupted_losses(
    tiny_model_dir: Path, tmp_path: Path, reference_losses: dict[int, float]
) -> None:
    out = tmp_path / "run"
    log = (tmp_path / "child.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "tiny_run.py"),
            str(tiny_model_dir),
            str(out),
            "--save-steps",
            "12",
            "--stall-after",
            "12",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        _wait_for(out / "checkpoint-12" / COMPLETE_MARKER, process, tmp_path / "child.log")
    finally:
        log.close()
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    killed = [json.loads(line) for line in (out / LOSS_LOG).read_text().splitlines()]
    assert [r["step"] for r in killed][:12] == list(range(1, 13))

    assert latest_complete_checkpoint(out) == out / "checkpoint-12"
    trainer = build_trainer(tiny_model_dir, out, save_steps=12)
    trainer.train(resume_from_checkpoint=str(latest_complete_checkpoint(out)))
    resumed = losses_by_step(trainer)
    for step in range(13, 21):
        assert resumed[step] == pytest.approx(reference_losses[step], abs=1e-6), step
    lrs = {r["step"]: r["lr"] for r in map(json.loads, (out / LOSS_LOG).read_text().splitlines())}
    assert lrs[20] < lrs[13]  # the cosine schedule continued, not restarted


def test_crash_during_save_keeps_previous_checkpoint_and_auto_resume_uses_it(
    tiny_model_dir: Path, tmp_path: Path, reference_losses: dict[int, float]
) -> None:
    out = tmp_path / "run"
    trainer = build_trainer(tiny_model_dir, out, save_steps=4)
    upstream = trainer._save_rng_state

    def crash_on_second_save(output_dir: str) -> None:
        if trainer.state.global_step == 8:
            raise OSError("simulated crash while writing checkpoint-8")
        upstream(output_dir)

    trainer._save_rng_state = crash_on_second_save  # type: ignore[method-assign]
    with pytest.raises(OSError, match="simulated crash"):
        trainer.train()

    assert (out / "checkpoint-8").is_dir() and not is_complete_checkpoint(out / "checkpoint-8")  # torn, unmarked
    assert is_complete_checkpoint(out / "checkpoint-4")
    # A torn directory under the final name (e.g. written by plain transformers) is never "latest".
    (out / "checkpoint-9").mkdir()
    (out / "checkpoint-9" / "model.safetensors").write_bytes(b"torn")
    assert latest_complete_checkpoint(out) == out / "checkpoint-4"

    resumed = build_trainer(tiny_model_dir, out, save_steps=4)
    resumed.train(resume_from_checkpoint=str(latest_complete_checkpoint(out)))
    losses = losses_by_step(resumed)
    for step in range(5, 21):
        assert losses[step] == pytest.approx(reference_losses[step], abs=1e-6), step
    assert is_complete_checkpoint(out / "checkpoint-8")  # rewritten by the resumed run
    assert is_complete_checkpoint(out / "checkpoint-20")
    marker = json.loads((out / "checkpoint-20" / COMPLETE_MARKER).read_text())
    assert marker["step"] == 20 and "trainer_state.json" in marker["files"]


def test_save_total_limit_rotates_published_checkpoints(tiny_model_dir: Path, tmp_path: Path) -> None:
    trainer = build_trainer(tiny_model_dir, tmp_path, max_steps=8, save_steps=2, save_total_limit=2)
    trainer.train()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-6", "checkpoint-8"]


def test_resume_honours_a_new_save_steps(tiny_model_dir: Path, tmp_path: Path) -> None:
    """transformers would keep the checkpoint's save_steps (2): saves at 6, 8, 10, 12."""
    build_trainer(tiny_model_dir, tmp_path, max_steps=4, save_steps=2).train()
    resumed = build_trainer(tiny_model_dir, tmp_path, max_steps=12, save_steps=5)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))
    steps = sorted(int(p.name.split("-")[1]) for p in tmp_path.glob("checkpoint-*"))
    assert steps == [2, 4, 5, 10, 12]


def test_sigkill_between_save_and_mark_with_save_total_limit_1_keeps_a_complete_checkpoint(
    tiny_model_dir: Path, tmp_path: Path, reference_losses: dict[int, float]
) -> None:
    """transformers rotates inside its save; with limit 1 that would delete checkpoint-4 before
    checkpoint-8 is marked. The kill lands after transformers wrote checkpoint-8, before the mark."""
    out = tmp_path / "run"
    args = [str(tiny_model_dir), str(out), "--save-steps", "4", "--save-total-limit", "1", "--kill-on-save", "8"]
    with (tmp_path / "child.log").open("w") as log:
        process = subprocess.run(
            [sys.executable, str(HERE / "tiny_run.py"), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            timeout=240,
        )
    assert process.returncode == -signal.SIGKILL, (tmp_path / "child.log").read_text()[-3000:]
    assert (out / "checkpoint-8" / "trainer_state.json").is_file()  # transformers' save finished
    assert not is_complete_checkpoint(out / "checkpoint-8")
    assert latest_complete_checkpoint(out) == out / "checkpoint-4"
    assert not (out / "checkpoint-4" / "training_args.bin").exists()
    assert json.loads((out / "checkpoint-4" / "training_args.json").read_text())["save_total_limit"] == 1

    resumed = build_trainer(tiny_model_dir, out, save_steps=4, save_total_limit=1)
    resumed.train(resume_from_checkpoint=str(latest_complete_checkpoint(out)))
    losses = losses_by_step(resumed)
    for step in range(5, 21):
        assert losses[step] == pytest.approx(reference_losses[step], abs=1e-6), step
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-20"]
    assert not list(out.glob(".*"))  # no staging or temporary folders left behind
