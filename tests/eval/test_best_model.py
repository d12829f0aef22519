"""load_best_model_at_end on lmforge's checkpoint writer: the run ends with the weights of the
checkpoint whose eval loss was lowest, and rotation never removes that checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from lmforge.cli import main as lmforge

RECORDS = [{"instruction": f"Repeat the number {n}.", "output": f"{n} {n} {n}"} for n in range(12)]


def test_load_best_model_at_end_keeps_the_best_checkpoints_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text(json.dumps(RECORDS))
    out = tmp_path / "out"
    flat = {
        "model_name_or_path": str(tiny_model_dir), "template": "chatml", "dataset": str(tmp_path / "data.json"),
        "val_size": 4, "cutoff_len": 48, "output_dir": str(out), "max_steps": 6, "learning_rate": 0.3,
        "lr_scheduler_type": "constant", "per_device_train_batch_size": 2, "eval_strategy": "steps",
        "eval_steps": 1, "save_steps": 1, "save_total_limit": 1, "load_best_model_at_end": True,
        "metric_for_best_model": "eval_loss", "logging_steps": 1, "report_to": "none", "plot_loss": False,
    }  # fmt: skip
    assert lmforge(["train", *[f"{k}={v}" for k, v in flat.items()]]) == 0
    state = json.loads((out / "trainer_state.json").read_text())
    losses: dict[int, float] = {}
    for row in state["log_history"]:  # the first eval of each step (the run evaluates the best weights again)
        if "eval_loss" in row:
            losses.setdefault(row["step"], row["eval_loss"])
    best_step = min(losses, key=lambda step: losses[step])
    assert Path(state["best_model_checkpoint"]).name == f"checkpoint-{best_step}"
    best = load_file(out / f"checkpoint-{best_step}" / "adapter_model.safetensors")
    final = load_file(out / "adapter_model.safetensors")
    assert best.keys() == final.keys() and all(torch.equal(best[k], final[k]) for k in best)
    assert best_step < max(losses)  # the seeded run overshoots after step 3: the best is not the last
    print("eval losses by step:", losses, "best:", best_step)
