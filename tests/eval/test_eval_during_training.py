"""Evaluation during training: eval loss and token accuracy at eval_steps, on the loss picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lmforge.cli import main as lmforge
from lmforge.config import build_config
from lmforge.errors import LmforgeError
from lmforge.eval.token_accuracy import check_compute_accuracy, token_accuracy

RECORDS = [{"instruction": f"Repeat the number {n}.", "output": f"{n} {n} {n}"} for n in range(12)]


def test_token_accuracy_counts_next_token_hits_at_trained_positions_per_row() -> None:
    class Prediction:  # the two fields transformers' EvalPrediction carries
        predictions = np.array([[5, 6, 7, 0], [1, 2, 3, 4]])
        label_ids = np.array([[-100, 5, 9, -100], [-100, -100, -100, -100]])

    # Row 0: position 0 predicts label 1 (5 == 5), position 1 predicts label 2 (6 != 9): 1/2.
    # Row 1 trains nothing and is skipped.
    assert token_accuracy(Prediction()) == {"accuracy": 0.5}


def test_compute_accuracy_without_evaluations_is_refused() -> None:
    with pytest.raises(LmforgeError, match="compute_accuracy is measured at evaluations"):
        check_compute_accuracy(build_config({"compute_accuracy": True}))


def test_val_size_run_logs_eval_loss_and_token_accuracy_at_eval_steps(
    tiny_model_dir: Path, tokenizer, tmp_path: Path
) -> None:
    (tmp_path / "data.json").write_text(json.dumps(RECORDS))
    out = tmp_path / "out"
    flat = {
        "model_name_or_path": str(tiny_model_dir),
        "template": "chatml",
        "dataset": str(tmp_path / "data.json"),
        "val_size": 4,
        "cutoff_len": 48,
        "output_dir": str(out),
        "max_steps": 4,
        "learning_rate": 1e-2,
        "per_device_train_batch_size": 2,
        "per_device_eval_batch_size": 3,
        "eval_strategy": "steps",
        "eval_steps": 2,
        "compute_accuracy": True,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
    }
    assert lmforge(["train", *[f"{k}={v}" for k, v in flat.items()]]) == 0
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval_loss" in r]
    # Evaluated at steps 2 and 4, then once more at the end (eval_results.json): same weights, same numbers.
    assert [r["step"] for r in evals] == [2, 4, 4]
    assert evals[1]["eval_accuracy"] == evals[2]["eval_accuracy"]
    assert json.loads((out / "eval_results.json").read_text())["eval_accuracy"] == evals[2]["eval_accuracy"]
    assert all(0 <= r["eval_accuracy"] <= 1 for r in evals)
    assert (out / "training_loss.png").is_file()
    # The last evaluation saw the final weights: recompute its accuracy independently.
    assert _accuracy_of_saved_run(build_config(flat), tiny_model_dir, out, tokenizer) == pytest.approx(
        evals[-1]["eval_accuracy"], abs=1e-6
    )


def _accuracy_of_saved_run(cfg, base_dir: Path, adapter_dir: Path, tokenizer) -> float:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from lmforge.data.pipeline import build_datasets
    from lmforge.data.templates import get_template

    evaluation = build_datasets(cfg, tokenizer, get_template("chatml", tokenizer)).eval
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir).eval()
    scores = []
    for row in evaluation:
        with torch.inference_mode():
            predicted = model(torch.tensor([row["input_ids"]])).logits[0].argmax(-1)[:-1]
        labels = torch.tensor(row["labels"])[1:]
        trained = labels != -100
        scores.append((predicted[trained] == labels[trained]).float().mean().item())
    return sum(scores) / len(scores)
