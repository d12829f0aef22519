"""Method group: the stage to run and which parameters it trains (full, freeze, LoRA family)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IMPLEMENTED_STAGES = ("pt", "sft")


class MethodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Literal["pt", "sft", "rm", "dpo", "kto", "ppo", "grpo"] = Field(
        "sft", description="Training stage: pt (pre-training) or sft (supervised fine-tuning)."
    )
    finetuning_type: Literal["full", "freeze", "lora"] = Field(
        "lora", description="Which parameters train: full, freeze (last layers/modules) or lora."
    )
    lora_rank: int = Field(8, gt=0, description="LoRA rank.")
    lora_alpha: int | None = Field(None, gt=0, description="LoRA scale numerator; default: 2 x lora_rank.")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    lora_target: list[str] = Field(
        ["all"], description="Modules that get LoRA: all (every linear layer but the head) or names."
    )
    additional_target: list[str] | None = Field(
        None, description="Extra modules trained in full and saved with the adapter (e.g. embed_tokens)."
    )
    use_rslora: bool = Field(False, description="Rank-stabilised LoRA scaling (alpha / sqrt(rank)).")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")
    pissa_init: bool = Field(False, description="Initialise LoRA from principal singular vectors (PiSSA).")
    pissa_iter: int = Field(16, ge=-1, description="Fast-SVD iterations for PiSSA; -1 = exact SVD.")
    loraplus_lr_ratio: float | None = Field(
        None, gt=0, description="LoRA+: learning rate of B matrices = ratio x learning_rate."
    )
    create_new_adapter: bool = Field(
        False, description="Stack a new adapter on top of adapter_name_or_path instead of training it further."
    )
    freeze_trainable_layers: int = Field(
        2, description="freeze: train the last N layers (negative: the first -N layers)."
    )
    freeze_trainable_modules: list[str] = Field(
        ["all"], description="freeze: module names inside the trainable layers (all, mlp, self_attn, ...)."
    )
    freeze_extra_modules: list[str] | None = Field(
        None, description="freeze: modules outside the layers to train too (e.g. embed_tokens, norm)."
    )
