"""A tiny full fine-tuning run with one optimizer from the config, on LmforgeTrainer.

Config keys go through ``build_config`` (so the cross-key checks run) and
``build_training_arguments``, and the trainer gets ``optimizer_config=cfg.optimizer``, as in
train/run.py. Used in-process by the tests and as a subprocess (``python optim_run.py MODEL OUT
'{"use_badam": true}' --stall-after N``) where a test must SIGKILL a real process.
The model is a small random Llama with a 512-token vocabulary, so the embedding does not dwarf
the hidden matrices these optimizers save memory on (with the real tokenizer's 49k vocabulary it
holds 96% of a tiny model's weights). Data: 32 counting sequences of uneven length (each token
follows from the previous one, so the loss falls fast), with padding and shuffling.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, TrainerCallback

from lmforge.config import build_config
from lmforge.train.arguments import build_training_arguments
from lmforge.train.reliability.manifest import ManifestCallback
from lmforge.train.trainer import LmforgeTrainer

LOSS_LOG = "losses.jsonl"


SMALL_LLAMA = dict(
    vocab_size=512,
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    tie_word_embeddings=True,
    max_position_embeddings=256,
)


def make_model_dir(path: Path, seed: int = 0) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    LlamaForCausalLM(LlamaConfig(**SMALL_LLAMA, pad_token_id=0, bos_token_id=1, eos_token_id=2)).save_pretrained(path)
    return path


def tiny_dataset(n: int = 32, seed: int = 0) -> list[dict[str, list[int]]]:
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(8, 25, (1,), generator=generator))
        start = int(torch.randint(0, 300, (1,), generator=generator))
        ids = [100 + (start + k) % 300 for k in range(length)]
        rows.append({"input_ids": ids, "labels": ids})
    return rows


def collate(rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        ids[i, :n] = torch.tensor(row["input_ids"])
        labels[i, :n] = torch.tensor(row["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class LossFile(TrainerCallback):
    """Appends (step, loss) per log line, flushed at once, so a killed run leaves its record."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if logs and "loss" in logs:
            with self.path.open("a") as handle:
                handle.write(json.dumps({"step": state.global_step, "loss": logs["loss"]}) + "\n")


class StallAfter(TrainerCallback):
    """Sleeps once checkpoint-N is saved, so a test can kill the process at a known point."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= self.step:
            time.sleep(600)


def build_trainer(
    model_dir: str | Path,
    output_dir: str | Path,
    keys: dict[str, Any],
    *,
    callbacks: list[TrainerCallback] | None = None,
) -> LmforgeTrainer:
    output_dir = Path(output_dir)
    flat = {
        "model_name_or_path": str(model_dir), "finetuning_type": "full", "output_dir": str(output_dir),
        "per_device_train_batch_size": 4, "learning_rate": 3e-3, "max_steps": 8, "lr_scheduler_type": "cosine",
        "warmup_steps": 1, "logging_steps": 1, "save_steps": 100, "seed": 0, "disable_tqdm": True, **keys,
    }  # fmt: skip
    cfg = build_config(flat)
    output_dir.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return LmforgeTrainer(
        model=model,
        args=build_training_arguments(cfg),
        train_dataset=tiny_dataset(),
        data_collator=collate,
        callbacks=[LossFile(output_dir / LOSS_LOG), ManifestCallback(cfg), *(callbacks or [])],
        sparse_logits=cfg.train.sparse_logits,
        optimizer_config=cfg.optimizer,
    )


def losses_by_step(trainer: Any) -> dict[int, float]:
    return {entry["step"]: entry["loss"] for entry in trainer.state.log_history if "loss" in entry}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("output_dir")
    parser.add_argument("keys", type=json.loads)
    parser.add_argument("--stall-after", type=int, default=None)
    ns = parser.parse_args(argv)
    callbacks = [StallAfter(ns.stall_after)] if ns.stall_after else []
    build_trainer(ns.model_dir, ns.output_dir, ns.keys, callbacks=callbacks).train()


if __name__ == "__main__":
    main(sys.argv[1:])
