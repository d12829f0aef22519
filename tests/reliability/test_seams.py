"""The seams later stages build on (issue 15): one tokenizer+template builder, no private Trainer
overrides, nothing process-wide left behind by a run, outputs readable under the user's umask."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import stat
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import Trainer

from lmforge.config import build_config
from lmforge.train.reliability import ReliableTrainerMixin
from lmforge.train.trainer import LmforgeTrainer

SRC = Path(__file__).resolve().parents[2] / "src"
CONVERSATION = [
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "It is 4."},
    {"role": "user", "content": "And 3 + 3?"},
]
RECORDS = [{"instruction": f"Question {i}?", "output": f"Answer number {i} is here."} for i in range(16)]


def test_lmforge_trainers_redefine_no_private_trainer_method() -> None:
    private = {name for name in dir(Trainer) if name.startswith("_") and not name.startswith("__")}
    for trainer in (LmforgeTrainer, ReliableTrainerMixin):
        for cls in trainer.__mro__:
            if cls.__module__.startswith(("transformers", "builtins")):
                continue
            redefined = sorted(private & set(vars(cls)))
            assert redefined == [], f"{cls.__qualname__} redefines private Trainer methods {redefined}"


def test_source_reaches_into_no_private_trainer_or_tracker_attributes() -> None:
    hits = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "_get_output_dir" in line or "._wandb" in line or "._swanlab" in line
    ]
    assert hits == []


def _data_cfg(model: Path, data: Path, out: Path, **keys: Any) -> Any:
    flat = {
        "model_name_or_path": str(model), "dataset": str(data), "cutoff_len": 64, "output_dir": str(out),
        "preprocessing_num_workers": 1, "template_checks": "warn", **keys,
    }  # fmt: skip
    return build_config(flat)


def test_train_data_doctor_chat_and_api_render_the_same_token_ids(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from lmforge.commands import data as data_command
    from lmforge.commands import doctor as doctor_command
    from lmforge.data.pipeline import build_datasets
    from lmforge.infer.engine import build_engine
    from lmforge.models.tokenizer import load_tokenizer
    from lmforge.train.run import _setup_tokenizer_and_template

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    data = tmp_path / "convo.json"
    data.write_text(json.dumps([{"messages": CONVERSATION[:2]}]))
    cfg = _data_cfg(tiny_model_dir, data, tmp_path / "out")  # template: auto, the tokenizer's own

    train_tokenizer, train_template, own = _setup_tokenizer_and_template(cfg)
    train_prompt = train_template.encode_prompt(train_tokenizer, CONVERSATION)
    train_turns = train_template.encode_turns(train_tokenizer, CONVERSATION[:2])
    assert train_tokenizer.chat_template == train_template.chat_template_jinja(train_tokenizer)

    doctor_built, _ = doctor_command._template(cfg, load_tokenizer(cfg.model))
    assert doctor_built.template.encode_prompt(doctor_built.tokenizer, CONVERSATION) == train_prompt
    assert doctor_built.own_chat_template == own

    # `lmforge data` fills the tokenized cache; training then finds it (same tokenizer and template).
    config = tmp_path / "cfg.yaml"
    config.write_text("".join(f"{key}: {cfg.to_flat()[key]}\n" for key in _DATA_KEYS) + f"dataset: {data}\n")
    parser = argparse.ArgumentParser()
    data_command.register(parser.add_subparsers(dest="command"))
    args, extra = parser.parse_known_args(["data", str(config), "--num-samples", "1"])
    args.overrides = extra
    assert args.func(args) == 0
    capsys.readouterr()
    trained = build_datasets(cfg, train_tokenizer, train_template)
    assert trained.report.cache_hit
    mask = os.umask(0)
    os.umask(mask)
    cache = Path(trained.report.cache_path)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o777 & ~mask  # not mkdtemp's 0700 (issue 14 item 17)
    flat_turns = [token for prompt, answer in train_turns for token in (*prompt, *answer)]
    assert list(trained.train[0]["input_ids"]) == flat_turns

    engine = build_engine(cfg)  # what `lmforge chat` and `lmforge api` serve from
    try:
        assert engine.encode_chat(CONVERSATION) == train_prompt
    finally:
        engine.close()


_DATA_KEYS = ("model_name_or_path", "cutoff_len", "preprocessing_num_workers", "template_checks", "output_dir")


def _process_state() -> dict[str, Any]:
    loggers = {
        name: (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for name, logger in list(logging.root.manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
    }
    loggers[""] = (logging.root.level, list(logging.root.handlers), True, False)
    return {
        "signals": {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)},
        "environ": dict(os.environ),
        "loggers": loggers,
        "warnings": list(warnings.filters),
        "threads": torch.get_num_threads(),
    }


def _assert_same_state(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["signals"] == before["signals"]
    assert after["environ"] == before["environ"]
    assert {name: after["loggers"][name] for name in before["loggers"]} == before["loggers"]
    assert after["warnings"] == before["warnings"]
    assert after["threads"] == before["threads"]


def _open_tracker_runs() -> list[str]:
    from lmforge.train.reliability.trackers import open_runs

    return sorted(open_runs())


def test_two_runs_in_one_process_leave_no_state_behind_even_when_one_raises(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmforge.train.run import run_training

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    data = tmp_path / "data.json"
    data.write_text(json.dumps(RECORDS))
    base = {
        "model_name_or_path": str(tiny_model_dir), "dataset": str(data), "template": "chatml", "cutoff_len": 48,
        "per_device_train_batch_size": 4, "max_steps": 3, "logging_steps": 1, "save_steps": 2,
        "plot_loss": True, "preprocessing_num_workers": 1, "template_checks": "off", "finetuning_type": "full",
    }  # fmt: skip
    seen_during_run: dict[str, Any] = {}
    step = LmforgeTrainer.training_step

    def fail_at_step_2(self: Any, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
        if self.state.global_step == 1:
            seen_during_run.update(_process_state(), runs=_open_tracker_runs())
            raise RuntimeError("injected failure mid-run")
        return step(self, model, inputs, num_items_in_batch)

    before = _process_state()
    monkeypatch.setattr(LmforgeTrainer, "training_step", fail_at_step_2)
    with pytest.raises(RuntimeError, match="injected failure"):
        run_training(build_config({**base, "output_dir": str(tmp_path / "a"), "report_to": ["mlflow"]}))
    monkeypatch.setattr(LmforgeTrainer, "training_step", step)
    # The run did change process-wide state (so the checks below can fail) ...
    assert seen_during_run["signals"] != before["signals"]
    assert "MLFLOW_TRACKING_URI" in seen_during_run["environ"] and seen_during_run["runs"] == ["mlflow"]
    # ... and none of it outlived the run that raised.
    _assert_same_state(before, _process_state())
    assert _open_tracker_runs() == []

    out = tmp_path / "b"
    run_training(build_config({**base, "output_dir": str(out), "report_to": ["wandb"]}))
    _assert_same_state(before, _process_state())
    assert _open_tracker_runs() == []
    assert list((out / "wandb").glob("offline-run-*"))
    _assert_outputs_follow_umask(out)


def _assert_outputs_follow_umask(out: Path) -> None:
    """Issue 14 item 17: weights readable like any other file; no empty staging folder left."""
    mask = os.umask(0)
    os.umask(mask)
    assert not (out / ".lmforge-staging").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    for path in [out / "model.safetensors", out / "checkpoint-2" / "model.safetensors", out / "trainer_log.jsonl"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path
    assert stat.S_IMODE((out / "checkpoint-2").stat().st_mode) == 0o777 & ~mask
    assert not list(out.rglob("training_args.bin"))
    assert json.loads((out / "training_args.json").read_text())["max_steps"] == 3


def test_atomic_dir_publishes_with_umask_permissions_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    from lmforge.atomic import atomic_dir

    previous = os.umask(0o027)
    try:
        target = tmp_path / "model"
        with atomic_dir(target) as staging:
            (staging / "weights.bin").write_bytes(b"1")
            os.chmod(staging / "weights.bin", 0o600)  # as safetensors writes them
        assert stat.S_IMODE(target.stat().st_mode) == 0o750
        assert stat.S_IMODE((target / "weights.bin").stat().st_mode) == 0o640
        with pytest.raises(OSError), atomic_dir(target) as staging:
            (staging / "weights.bin").write_bytes(b"2")
            raise OSError("disk full")
        assert (target / "weights.bin").read_bytes() == b"1"  # the old copy is untouched
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    finally:
        os.umask(previous)


def test_resave_of_a_step_is_untrusted_until_marked_and_rotation_waits_for_the_mark(tmp_path: Path) -> None:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from lmforge.train.reliability import CheckpointWriter, is_complete_checkpoint, latest_complete_checkpoint

    args = TrainingArguments(output_dir=str(tmp_path), save_total_limit=1, use_cpu=True, report_to="none")
    state, model, writer = TrainerState(global_step=4), torch.nn.Linear(2, 2), CheckpointWriter()
    older, current = tmp_path / "checkpoint-2", tmp_path / "checkpoint-4"
    for step, folder in ((2, older), (4, current)):
        folder.mkdir()
        (folder / "trainer_state.json").write_text("{}")
        writer.complete(folder, args, TrainerState(global_step=step))
    assert latest_complete_checkpoint(tmp_path) == current

    writer.before_save(args, current, model)  # transformers is about to rewrite checkpoint-4
    assert not is_complete_checkpoint(current) and latest_complete_checkpoint(tmp_path) == older
    assert args.save_total_limit is None  # transformers' own rotation is held back during the save
    writer.on_save(args, state, TrainerControl())
    assert args.save_total_limit == 1
    assert is_complete_checkpoint(current) and not older.exists()  # rotated only after the mark
    assert json.loads((current / "training_args.json").read_text())["save_total_limit"] == 1
