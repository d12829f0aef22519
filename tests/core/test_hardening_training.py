"""Training runs never lose the user's files, never block their own rerun, and relaunch right:
overwrite removes only lmforge's files, a failed check writes nothing, ``--resume`` on a finished
run is a no-op, on a run that died before its first checkpoint starts fresh, and stage pt trains a
base model that has no chat template."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from lmforge.config import build_config
from lmforge.errors import LmforgeError
from lmforge.train.run import run_training

RECORDS = [
    {"instruction": "Say hello.", "output": "Hello there, friend!"},
    {"instruction": "What is two plus two?", "output": "Two plus two is four."},
    {"instruction": "Name a colour.", "output": "Red, like a sunset over the sea."},
    {"instruction": "Count to three.", "output": "One, two, three."},
]


@pytest.fixture()
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "tiny.json"
    path.parent.mkdir()
    path.write_text(json.dumps(RECORDS))
    return path


def _cfg(model: Path, data_file: Path, out: Path | str, **overrides: Any):
    flat = {
        "model_name_or_path": str(model), "dataset": str(data_file), "template": "chatml", "cutoff_len": 48,
        "output_dir": str(out), "per_device_train_batch_size": 2, "learning_rate": 1e-2, "max_steps": 2,
        "logging_steps": 1, "save_steps": 1, "plot_loss": False, "lr_scheduler_type": "constant",
        "preprocessing_num_workers": 1, "template_checks": "off",
        **overrides,
    }  # fmt: skip
    return build_config(flat)


def _digest(root: Path) -> dict[str, str]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _steps(out: Path) -> list[int]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [row["step"] for row in rows if "loss" in row]


def test_overwrite_removes_only_lmforge_files_even_in_the_working_directory(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    monkeypatch.chdir(work)
    (work / "train.yaml").write_text("my config")
    (work / "data" / "tiny.json").write_text(json.dumps(RECORDS))
    run_training(_cfg(tiny_model_dir, Path("data/tiny.json"), "."))  # output_dir: . (checkpoint-1, -2)
    (work / "notes.txt").write_text("mine")  # beside the previous run
    (work / "checkpoint-notes").mkdir()  # not a checkpoint-N name: the user's
    user_files = {name: _digest(work)[name] for name in ("train.yaml", "data/tiny.json", "notes.txt")}
    run_training(_cfg(tiny_model_dir, Path("data/tiny.json"), ".", overwrite_output_dir=True, max_steps=1))
    assert {name: _digest(work)[name] for name in user_files} == user_files
    assert (work / "checkpoint-notes").is_dir()
    assert not (work / "checkpoint-2").exists() and (work / "checkpoint-1").is_dir()  # the old run is gone
    assert (work / "adapter_model.safetensors").is_file() and _steps(work) == [1]


def test_failed_checks_write_nothing_and_the_fixed_rerun_starts(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with pytest.raises(LmforgeError, match="template check failed"):
        run_training(_cfg(tiny_model_dir, data_file, out, template="llama3", template_checks="strict"))
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(LmforgeError, match="lora_target"):
        run_training(_cfg(tiny_model_dir, data_file, out, lora_target="not_a_module"))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    result = run_training(_cfg(tiny_model_dir, data_file, out, template_checks="strict", max_steps=1))
    assert result.global_step == 1 and (out / "template_checks.json").is_file()


def test_resume_of_a_finished_run_is_a_no_op_and_a_longer_one_continues(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run_training(_cfg(tiny_model_dir, data_file, out, max_steps=3))  # 2 steps per epoch: ends mid-epoch
    before = _digest(out)
    again = run_training(_cfg(tiny_model_dir, data_file, out, max_steps=3, resume_from_checkpoint=True))
    assert again.already_finished and again.global_step == 3 and "train_loss" in again.metrics
    assert _digest(out) == before  # not one step more, no file rewritten
    longer = run_training(_cfg(tiny_model_dir, data_file, out, resume_from_checkpoint=True, max_steps=4))
    assert not longer.already_finished and longer.global_step == 4 and _steps(out) == [1, 2, 3, 4]


def test_resume_of_a_run_that_died_before_its_first_checkpoint_starts_fresh(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "run_config.yaml").write_text("stage: sft\n")
    (out / "trainer_log.jsonl").write_text('{"step": 1, "loss": 9.0}\n')
    (out / "notes.txt").write_text("mine")
    result = run_training(_cfg(tiny_model_dir, data_file, out, resume_from_checkpoint="auto"))
    assert result.global_step == 2 and _steps(out) == [1, 2]
    assert json.loads((out / "trainer_log.jsonl").read_text().splitlines()[0])["loss"] != 9.0
    assert (out / "notes.txt").read_text() == "mine"


def test_resume_without_checkpoint_keeps_refusing_a_directory_with_final_weights(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "adapter_model.safetensors").write_bytes(b"precious")
    with pytest.raises(LmforgeError, match="already holds a training run"):
        run_training(_cfg(tiny_model_dir, data_file, out, resume_from_checkpoint="auto"))
    assert [p.name for p in out.iterdir()] == ["adapter_model.safetensors"]


def test_pretraining_a_base_model_without_chat_template(tokenizer, tiny_model_factory, tmp_path: Path) -> None:
    import copy

    base_tokenizer = copy.deepcopy(tokenizer)
    base_tokenizer.chat_template = None
    model = tiny_model_factory(tmp_path / "base", base_tokenizer)
    assert not (model / "chat_template.jinja").exists()
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"Document {i}: the quick brown fox."}) + "\n" for i in range(8)))
    out = tmp_path / "pt"
    cfg = _cfg(model, corpus, out, stage="pt", template="auto", finetuning_type="full", cutoff_len=16)
    assert cfg.data.template == "auto"
    assert run_training(cfg).global_step == 2
    saved = json.loads((out / "tokenizer_config.json").read_text())
    assert not saved.get("chat_template") and not (out / "chat_template.jinja").exists()


def test_resume_from_a_checkpoint_at_the_target_trains_no_step_more(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    """Killed after the last checkpoint, before the final outputs: the relaunch only writes them."""
    from safetensors.torch import load_file

    out = tmp_path / "run"
    run_training(_cfg(tiny_model_dir, data_file, out, max_steps=3))  # 2 steps per epoch: stops mid-epoch
    for name in ("adapter_model.safetensors", "all_results.json", "trainer_state.json"):
        (out / name).unlink()
    result = run_training(_cfg(tiny_model_dir, data_file, out, max_steps=3, resume_from_checkpoint=True))
    assert result.global_step == 3 and _steps(out) == [1, 2, 3]
    final, checkpoint = (
        load_file(out / "adapter_model.safetensors"),
        load_file(out / "checkpoint-3" / "adapter_model.safetensors"),
    )
    assert final.keys() == checkpoint.keys() and all((final[k] == checkpoint[k]).all() for k in final)
    assert (out / "all_results.json").is_file()
