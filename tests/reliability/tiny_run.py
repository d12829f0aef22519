"""A tiny, deterministic training run on a bare ``Trainer`` + ``ReliableTrainerMixin``.

Used in-process by the tests and as a subprocess (``python tiny_run.py MODEL OUT ...``) where a
test must SIGKILL a real process. Data: 64 random token sequences of uneven length (so padding,
shuffling and the LR schedule all matter for reproducing losses after a resume).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

from lmforge.train.reliability import ReliableTrainerMixin

LOSS_LOG = "losses.jsonl"


class TinyTrainer(ReliableTrainerMixin, Trainer):
    pass


def tiny_dataset(n: int = 64, seed: int = 0) -> list[dict[str, list[int]]]:
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(8, 25, (1,), generator=generator))
        ids = torch.randint(100, 1000, (length,), generator=generator).tolist()
        rows.append({"input_ids": ids, "labels": ids})
    return rows


def collate(rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), 0, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        ids[i, :n] = torch.tensor(row["input_ids"])
        labels[i, :n] = torch.tensor(row["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class LossFile(TrainerCallback):
    """Appends (step, loss, lr) per log line, flushed at once, so a killed run leaves its record."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if logs and "loss" in logs:
            with self.path.open("a") as handle:
                handle.write(
                    json.dumps({"step": state.global_step, "loss": logs["loss"], "lr": logs.get("learning_rate")})
                )
                handle.write("\n")


class StallAfter(TrainerCallback):
    """Sleeps once checkpoint-N is saved and marked (at the next step's start), so a test can kill
    the process at a known point."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= self.step:
            time.sleep(600)


class KillOnSave(TrainerCallback):
    """SIGKILLs this process in ``on_save`` of step N: after transformers wrote checkpoint-N, before
    the CheckpointWriter (added by the mixin after every callback given) marks it complete."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def build_trainer(
    model_dir: str | Path,
    output_dir: str | Path,
    *,
    max_steps: int = 20,
    save_steps: int = 4,
    callbacks: list[TrainerCallback] | None = None,
    skip_nonfinite_steps: bool = False,
    **extra_args: Any,
) -> TinyTrainer:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        learning_rate=1e-3,
        lr_scheduler_type="cosine",
        warmup_steps=2,
        logging_steps=1,
        save_steps=save_steps,
        save_strategy="steps",
        use_cpu=True,
        report_to="none",
        seed=0,
        data_seed=0,
        disable_tqdm=True,
        **extra_args,
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return TinyTrainer(
        model=model,
        args=args,
        train_dataset=tiny_dataset(),
        data_collator=collate,
        callbacks=[LossFile(output_dir / LOSS_LOG), *(callbacks or [])],
        skip_nonfinite_steps=skip_nonfinite_steps,
    )


def losses_by_step(trainer: Trainer) -> dict[int, float]:
    return {entry["step"]: entry["loss"] for entry in trainer.state.log_history if "loss" in entry}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("output_dir")
    parser.add_argument("--save-steps", type=int, default=4)
    parser.add_argument("--stall-after", type=int, default=None)
    parser.add_argument("--kill-on-save", type=int, default=None)
    parser.add_argument("--save-total-limit", type=int, default=None)
    parser.add_argument("--resume", default=None)
    ns = parser.parse_args(argv)
    callbacks: list[TrainerCallback] = [StallAfter(ns.stall_after)] if ns.stall_after else []
    callbacks += [KillOnSave(ns.kill_on_save)] if ns.kill_on_save else []
    trainer = build_trainer(
        ns.model_dir, ns.output_dir, save_steps=ns.save_steps, callbacks=callbacks, save_total_limit=ns.save_total_limit
    )
    trainer.train(resume_from_checkpoint=ns.resume)


if __name__ == "__main__":
    main(sys.argv[1:])
