"""GRPO group: the keys of ``stage: grpo`` (trl's GRPOTrainer), docs/stages.md.

Each prompt is answered ``num_generations`` times; an answer's advantage is its reward minus the mean
of its group (scaled by the group's standard deviation, trl's default). The rewards come from the
rewards group (``reward_funcs``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GRPO_LOSSES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")


class GrpoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_generations: int = Field(
        8,
        ge=2,
        description="grpo: answers sampled per prompt (a group); per_device_train_batch_size x "
        "gradient_accumulation_steps must be a multiple of it.",
    )
    max_completion_length: int = Field(
        256, gt=0, description="grpo (and distill_on_policy): the most tokens generated per answer."
    )
    grpo_loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = Field(
        "dapo",
        description="grpo: how token losses are aggregated (trl's loss_type): grpo (per answer), dr_grpo "
        "(constant max_completion_length), dapo (tokens of the accumulated batch), bnpo (tokens of the micro-"
        "batch), cispo, sapo, luspo (sequence-level importance weights), vespo.",
    )
    grpo_beta: float = Field(
        0.0, ge=0, description="grpo: KL penalty towards the starting model (trl's beta); 0 loads no reference."
    )
    grpo_temperature: float = Field(1.0, gt=0, description="grpo: sampling temperature of the answers.")
