"""The Trainer every causal-LM stage uses: transformers' Trainer with atomic checkpoints, the
non-finite loss guard and step metrics (ReliableTrainerMixin), LoRA+ optimizer groups, and the
LM head computed only at trained positions.

Loss over accumulation steps is normalised by the count of trained tokens in the whole
accumulated batch (transformers passes ``num_items_in_batch`` to the model), so batch 1 x
accumulation k gives the same update as batch k even with sequences of different lengths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from lmforge.train.loss import supports_trained_positions_loss, trained_positions_loss
from lmforge.train.reliability import ReliableTrainerMixin


class LmforgeTrainer(ReliableTrainerMixin, Trainer):
    def __init__(
        self, *args: Any, loraplus_lr_ratio: float | None = None, sparse_logits: bool = True, **kwargs: Any
    ) -> None:
        self.loraplus_lr_ratio = loraplus_lr_ratio
        super().__init__(*args, **kwargs)
        self.sparse_logits = sparse_logits and supports_trained_positions_loss(self.model)

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        """transformers pickles TrainingArguments into training_args.bin; we keep no pickles
        (loading one runs code) and write the same arguments as JSON instead."""
        super()._save(output_dir, state_dict)
        target = Path(output_dir or self.args.output_dir)
        (target / "training_args.bin").unlink(missing_ok=True)
        if self.args.should_save:
            (target / "training_args.json").write_text(self.args.to_json_string(), encoding="utf-8")

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        """The LM head runs only at trained positions when that is exact (see train/loss.py).

        Wrapped models (DDP, DeepSpeed) keep the standard path: their forward hooks must run.
        """
        fast = (
            self.sparse_logits
            and not return_outputs
            and model.training
            and num_items_in_batch is not None
            and "labels" in inputs
            and self.accelerator.unwrap_model(model) is model
        )
        if not fast:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        return trained_positions_loss(model, inputs, num_items_in_batch)

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        if self.loraplus_lr_ratio is None or self.optimizer is not None:
            return super().create_optimizer(model) if model is not None else super().create_optimizer()
        self.optimizer = _loraplus_optimizer(self, self.loraplus_lr_ratio)
        return self.optimizer


def _loraplus_optimizer(trainer: Trainer, ratio: float) -> torch.optim.Optimizer:
    """LoRA+ (Hayou et al. 2024): B matrices learn ``ratio`` times faster than A matrices."""
    args = trainer.args
    decay_names = set(trainer.get_decay_parameter_names(trainer.model))
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in trainer.model.named_parameters():
        if not param.requires_grad:
            continue
        lr = args.learning_rate * (ratio if "lora_B" in name else 1.0)
        decay = args.weight_decay if name in decay_names else 0.0
        groups.setdefault((lr, decay), []).append(param)
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, trainer.model)
    optimizer_kwargs.pop("lr", None)
    param_groups = [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]
    return optimizer_cls(param_groups, **optimizer_kwargs)
