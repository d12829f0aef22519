"""Train group: where outputs go and how the optimiser runs.

Keys follow transformers' ``TrainingArguments`` names; any other field of ``TrainingArguments``
may be given too and is passed through unchanged (kept in ``extra``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    do_train: bool = Field(True, description="Run training (lmforge train).")
    do_eval: bool = Field(False, description="Evaluate on eval_dataset / val_size during training.")
    output_dir: str = Field("saves/lmforge-run", description="Where weights, logs and checkpoints go.")
    overwrite_output_dir: bool = Field(
        False,
        description="Replace a previous run in output_dir (removes only the files a run writes; yours stay).",
    )
    per_device_train_batch_size: int = Field(1, gt=0, description="Samples per device per step.")
    per_device_eval_batch_size: int = Field(1, gt=0, description="Samples per device per eval step.")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Micro-batches per optimiser step.")
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate.")
    num_train_epochs: float = Field(3.0, gt=0, description="Passes over the training set.")
    max_steps: int = Field(-1, description="Stop after this many optimiser steps (overrides epochs if > 0).")
    lr_scheduler_type: str = Field("cosine", description="Scheduler: cosine, linear, constant, ...")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Warm-up as a share of all steps.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm (0 = off).")
    optim: str = Field("adamw_torch", description="Optimiser name as transformers spells it.")
    logging_steps: int = Field(10, gt=0, description="Log every N optimiser steps.")
    save_steps: int = Field(500, gt=0, description="Save a checkpoint every N steps.")
    save_total_limit: int | None = Field(None, gt=0, description="Keep at most N checkpoints.")
    save_strategy: Literal["no", "steps", "epoch"] = Field("steps", description="When to save checkpoints.")
    eval_strategy: Literal["no", "steps", "epoch"] = Field("no", description="When to evaluate.")
    eval_steps: int | None = Field(None, gt=0, description="Evaluate every N steps (eval_strategy: steps).")
    resume_from_checkpoint: str | bool | None = Field(
        None, description="A checkpoint directory, or true/auto for the latest complete one in output_dir."
    )
    seed: int = Field(42, description="Random seed for initialisation, data order and dropout.")
    bf16: bool | None = Field(None, description="bf16 mixed precision; default: on where the GPU supports it.")
    fp16: bool = Field(False, description="fp16 mixed precision (older GPUs).")
    pure_bf16: bool = Field(False, description="Load and train the model in bf16 without an fp32 master copy.")
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in backward: less memory, ~30% slower."
    )
    plot_loss: bool = Field(True, description="Write training_loss.png at the end of training.")
    report_to: list[str] = Field(
        ["none"], description="Trackers: none, tensorboard, wandb, swanlab, mlflow (comma-separated)."
    )
    ddp_timeout: int = Field(1800, gt=0, description="Seconds before a distributed collective times out.")
    rdzv_timeout: int = Field(
        60, gt=0, description="Seconds torchrun waits for every node to join (NNODES > 1) before failing."
    )
    sparse_logits: bool = Field(
        True, description="Compute the LM head only at trained positions: same loss, less compute and memory."
    )
    skip_nonfinite_steps: bool = Field(
        False, description="Skip an optimiser step whose loss is NaN/Inf instead of stopping the run."
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Other transformers TrainingArguments fields, passed through."
    )
