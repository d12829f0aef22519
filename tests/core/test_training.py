"""Training end to end on a tiny random model: each method lowers the loss and touches only its
parameters; accumulation is loss-correct; resume continues; adapters continue; outputs are complete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from lmforge.config import build_config
from lmforge.errors import LmforgeError
from lmforge.train.run import run_training

RECORDS = [
    {"instruction": "Say hello.", "output": "Hello there, friend!"},
    {"instruction": "What is two plus two?", "output": "Two plus two is four."},
    {"instruction": "Name a colour.", "input": "Something warm.", "output": "Red, like a sunset over the sea."},
    {"instruction": "Count to three.", "output": "One, two, three."},
    {"instruction": "Who wrote Hamlet?", "output": "William Shakespeare wrote Hamlet around 1600."},
    {"instruction": "Give me a fruit.", "output": "An apple."},
    {"instruction": "Describe the sky on a clear day in a long sentence.", "output": "It is a deep, bright blue."},
    {"instruction": "Say goodbye.", "output": "Goodbye, and take care!"},
]


@pytest.fixture()
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(RECORDS))
    return path


def _cfg(tiny_model_dir: Path, data_file: Path, out: Path, **overrides: Any):
    flat = {
        "model_name_or_path": str(tiny_model_dir),
        "dataset": str(data_file),
        "template": "chatml",
        "cutoff_len": 64,
        "output_dir": str(out),
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-2,
        "max_steps": 8,
        "logging_steps": 1,
        "save_steps": 100,
        "plot_loss": False,
        "lr_scheduler_type": "constant",
        "preprocessing_num_workers": 1,
        "template_checks": "off",
        **overrides,
    }
    return build_config(flat)


def _losses(out: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return {row["step"]: row["loss"] for row in rows if "loss" in row}


@pytest.mark.parametrize("method", ["lora", "freeze", "full"])
def test_each_method_lowers_the_loss(tiny_model_dir: Path, data_file: Path, tmp_path: Path, method: str) -> None:
    out = tmp_path / method
    cfg = _cfg(tiny_model_dir, data_file, out, finetuning_type=method, freeze_trainable_layers=1, max_steps=12)
    run_training(cfg)
    losses = _losses(out)
    assert losses[12] < losses[1]
    assert (out / "run_config.yaml").is_file() and (out / "all_results.json").is_file()
    weights = out / ("adapter_model.safetensors" if method == "lora" else "model.safetensors")
    assert weights.is_file()


def test_freeze_leaves_frozen_weights_unchanged(tiny_model_dir: Path, data_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "freeze"
    run_training(_cfg(tiny_model_dir, data_file, out, finetuning_type="freeze", freeze_trainable_layers=1))
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("model.layers.1.") for k in changed)


def test_gradient_accumulation_matches_a_large_batch(tiny_model_dir: Path, data_file: Path, tmp_path: Path) -> None:
    """Batch 1 x accumulation 4 gives the same update as batch 4 (sequences of different lengths)."""
    common = dict(finetuning_type="full", optim="sgd", learning_rate=0.5, max_steps=1, max_grad_norm=0.0)
    big = _cfg(tiny_model_dir, data_file, tmp_path / "big", per_device_train_batch_size=4, **common)
    acc = _cfg(
        tiny_model_dir,
        data_file,
        tmp_path / "acc",
        per_device_train_batch_size=1,
        gradient_accumulation_steps=4,
        **common,
    )
    run_training(big)
    run_training(acc)
    a, b = load_file(tmp_path / "big" / "model.safetensors"), load_file(tmp_path / "acc" / "model.safetensors")
    base = load_file(tiny_model_dir / "model.safetensors")
    assert any(not torch.equal(base[k], a[k]) for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)


def test_resume_continues_step_lr_and_data_order(tiny_model_dir: Path, data_file: Path, tmp_path: Path) -> None:
    common = dict(max_steps=6, save_steps=3, lr_scheduler_type="linear", num_train_epochs=3)
    straight = tmp_path / "straight"
    run_training(_cfg(tiny_model_dir, data_file, straight, **common))
    partial = tmp_path / "partial"
    run_training(_cfg(tiny_model_dir, data_file, partial, **{**common, "max_steps": 6, "save_steps": 3}))
    # Simulate an interruption after step 3: keep only checkpoint-3, then resume.
    import shutil

    shutil.rmtree(partial / "checkpoint-6")
    for name in ("adapter_model.safetensors", "all_results.json"):
        (partial / name).unlink()
    run_training(_cfg(tiny_model_dir, data_file, partial, resume_from_checkpoint="auto", **common))
    rows = {
        r["step"]: r for r in map(json.loads, (partial / "trainer_log.jsonl").read_text().splitlines()) if "loss" in r
    }
    expected = {
        r["step"]: r for r in map(json.loads, (straight / "trainer_log.jsonl").read_text().splitlines()) if "loss" in r
    }
    for step in (4, 5, 6):
        assert rows[step]["loss"] == pytest.approx(expected[step]["loss"], abs=1e-6)
        assert rows[step]["lr"] == pytest.approx(expected[step]["lr"], abs=1e-12)


def test_continuing_an_adapter_starts_from_its_weights(tiny_model_dir: Path, data_file: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    run_training(_cfg(tiny_model_dir, data_file, first, max_steps=10))
    second = tmp_path / "second"
    run_training(_cfg(tiny_model_dir, data_file, second, adapter_name_or_path=str(first), max_steps=2))
    assert _losses(second)[1] < _losses(first)[1]
    stacked = tmp_path / "stacked"
    run_training(
        _cfg(tiny_model_dir, data_file, stacked, adapter_name_or_path=str(first), create_new_adapter=True, max_steps=1)
    )
    # A new adapter starts with B = 0, so its first loss is the merged first adapter's loss.
    assert _losses(stacked)[1] == pytest.approx(_losses(second)[1], rel=1e-4)


def test_previous_run_is_refused_and_left_untouched(tiny_model_dir: Path, data_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "adapter_model.safetensors").write_bytes(b"precious")
    with pytest.raises(LmforgeError, match="already holds a training run"):
        run_training(_cfg(tiny_model_dir, data_file, out))
    assert [p.name for p in out.iterdir()] == ["adapter_model.safetensors"]
    assert (out / "adapter_model.safetensors").read_bytes() == b"precious"


def test_pretraining_on_raw_text_packs_and_lowers_the_loss(tiny_model_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    lines = [f"Document {i}: the quick brown fox jumps over the lazy dog {i % 3} times." for i in range(40)]
    corpus.write_text("".join(json.dumps({"text": line}) + "\n" for line in lines))
    out = tmp_path / "pt"
    cfg = _cfg(tiny_model_dir, corpus, out, stage="pt", finetuning_type="full", cutoff_len=32, max_steps=10)
    assert cfg.data.packing is None  # pt packs by default
    run_training(cfg)
    losses = _losses(out)
    assert losses[10] < losses[1]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_gradient_checkpointing_changes_neither_loss_nor_weights(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path, method: str
) -> None:
    runs = {}
    for checkpointing in (False, True):
        out = tmp_path / f"{method}-{checkpointing}"
        options = {"finetuning_type": method, "max_steps": 3, "gradient_checkpointing": checkpointing}
        run_training(_cfg(tiny_model_dir, data_file, out, **options))
        name = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
        runs[checkpointing] = (_losses(out), load_file(out / name))
    (plain_losses, plain), (ckpt_losses, ckpt) = runs[False], runs[True]
    for step, loss in plain_losses.items():
        assert ckpt_losses[step] == pytest.approx(loss, abs=1e-5)
    for key in plain:
        torch.testing.assert_close(ckpt[key], plain[key], atol=1e-5, rtol=1e-4)
