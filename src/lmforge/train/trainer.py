"""What every stage's trainer shares, and the trainer of the causal-LM stages (pt, sft).

``LmforgeTrainerMixin`` (mix it in before any transformers or trl Trainer class): trustworthy
checkpoints (no pickles), the non-finite loss guard and step metrics (ReliableTrainerMixin), LoRA+
optimizer groups and lmforge's optimizers (GaLore, APOLLO, BAdam, Muon, LOMO: train/optimizers.py).
``LmforgeTrainer`` adds the LM head computed only at trained positions (under the model's own
forward and its autocast).

Loss over accumulation steps is normalised by the count of trained tokens in the whole
accumulated batch (transformers passes ``num_items_in_batch`` to the model), so batch 1 x
accumulation k gives the same update as batch k even with sequences of different lengths.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

from lmforge.train.loss import supports_trained_positions_loss, trained_positions_loss
from lmforge.train.reliability import ReliableTrainerMixin


class LmforgeTrainerMixin(ReliableTrainerMixin):
    """Extra keyword arguments: ``loraplus_lr_ratio``, ``optimizer_config`` (cfg.optimizer), and
    ReliableTrainerMixin's ``skip_nonfinite_steps`` / ``checkpoint_writer``."""

    def __init__(
        self, *args: Any, loraplus_lr_ratio: float | None = None, optimizer_config: Any = None, **kwargs: Any
    ) -> None:
        self.loraplus_lr_ratio = loraplus_lr_ratio
        self.optimizer_config = optimizer_config  # cfg.optimizer: GaLore, APOLLO, BAdam, Muon (train/optimizers.py)
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        if self.optimizer is None:  # type: ignore[has-type]
            from lmforge.train.optimizers import build_optimizer

            self.optimizer = build_optimizer(self, self.optimizer_config)  # None: transformers chooses
        if self.loraplus_lr_ratio is None or self.optimizer is not None:
            upstream = super().create_optimizer  # type: ignore[misc]
            return upstream(model) if model is not None else upstream()
        self.optimizer = _loraplus_optimizer(self, self.loraplus_lr_ratio)  # type: ignore[arg-type]
        return self.optimizer


class LmforgeTrainer(LmforgeTrainerMixin, Trainer):
    def __init__(self, *args: Any, sparse_logits: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sparse_logits = sparse_logits and supports_trained_positions_loss(self.model)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        """The LM head runs only at trained positions (see train/loss.py), through the model's own
        forward, so autocast and every wrapper (peft, DDP, DeepSpeed) apply as on the standard path.

        A custom ``compute_loss_func``, a model that takes no loss kwargs, or a call that needs the
        outputs takes the standard path.
        """
        fast = (
            self.sparse_logits
            and not return_outputs
            and model.training
            and num_items_in_batch is not None
            and "labels" in inputs
            and self.compute_loss_func is None
            and self.model_accepts_loss_kwargs  # upstream then treats the loss as normalised by num_items
        )
        if not fast:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = trained_positions_loss(model, inputs, num_items_in_batch, self.args.label_smoothing_factor)
        if self.args.average_tokens_across_devices:
            # As upstream: num_items_in_batch counts every process's tokens and DDP averages
            # gradients, so the local loss is scaled back up by the number of data-parallel ranks.
            loss_scale = self.accelerator.num_processes // self.get_tp_size()
            loss = loss * (loss_scale if self.args.n_gpu <= 1 else self.args.n_gpu)
        return loss


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
