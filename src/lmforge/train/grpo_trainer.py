"""trl's GRPOTrainer with lmforge's reliability, and the run's arguments as a GRPOConfig (stage grpo:
train/stages/grpo.py). Imported only when a grpo run builds its trainer (trl takes seconds to import)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import RepeatSampler

from lmforge.errors import LmforgeError
from lmforge.train.trainer import LmforgeTrainerMixin


def grpo_arguments(cfg: Any, args: Any) -> GRPOConfig:
    """The run's TrainingArguments (built before any weight loaded) as a GRPOConfig with the grpo keys."""
    from transformers import TrainingArguments

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    grpo, rewards = cfg.grpo, cfg.rewards
    try:
        return GRPOConfig(
            **values,
            num_generations=grpo.num_generations,
            max_completion_length=grpo.max_completion_length,
            loss_type=grpo.grpo_loss_type,
            importance_sampling_level="sequence" if grpo.grpo_loss_type == "luspo" else "token",
            beta=grpo.grpo_beta,
            temperature=grpo.grpo_temperature,
            reward_weights=rewards.reward_weights,
        )
    except (TypeError, ValueError) as err:
        raise LmforgeError(f"stage grpo: invalid training arguments: {err}") from None


class EpochSeededSampler(RepeatSampler):
    """trl's RepeatSampler draws every epoch's order from one generator seeded once, so a resumed run
    (a fresh generator) would visit the prompts of later epochs in another order. Seeded from the
    epoch (transformers calls ``set_epoch`` before each one), a resume sees the same prompts."""

    @classmethod
    def like(cls, sampler: RepeatSampler) -> EpochSeededSampler:
        return cls(
            data_source=sampler.data_source,
            mini_repeat_count=sampler.mini_repeat_count,
            batch_size=sampler.batch_size,
            repeat_count=sampler.repeat_count,
            shuffle=sampler.shuffle,
            seed=sampler.seed,
        )

    def set_epoch(self, epoch: int) -> None:
        if self.shuffle:
            self.generator.manual_seed((self.seed or 0) + epoch)


class GrpoTrainer(LmforgeTrainerMixin, GRPOTrainer):
    """trl's GRPOTrainer with lmforge's reliability (checkpoints, NaN guard, metrics, LoRA+, optimizers)."""

    def get_train_dataloader(self) -> Any:
        """trl's loader with its prompt sampler made resumable (public hook: no private method replaced)."""
        loader = super().get_train_dataloader()
        outer = getattr(loader, "batch_sampler", None)
        for holder in (outer, getattr(outer, "batch_sampler", None)):
            sampler = getattr(holder, "sampler", None)
            if type(sampler) is RepeatSampler:
                holder.sampler = EpochSeededSampler.like(sampler)
        return loader

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        if model.training:  # tokens/s counts prompts and sampled answers (the raw rows carry no tensors)
            self.step_metrics.count_batch(
                {
                    "input_ids": torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1),
                    "attention_mask": torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
                }
            )
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
