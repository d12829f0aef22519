"""Method group: the stage to run, which parameters it trains (full, freeze, LoRA family), and the
preference stages' keys (rm, dpo, kto: docs/stages.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IMPLEMENTED_STAGES = ("pt", "sft", "rm", "dpo", "kto", "ppo", "grpo", "distill")
PREFERENCE_STAGES = ("rm", "dpo", "kto")
REFERENCE_FREE_LOSSES = ("orpo", "simpo")


class MethodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Literal["pt", "sft", "rm", "dpo", "kto", "ppo", "grpo", "distill"] = Field(
        "sft",
        description="Training stage: pt (pre-training), sft (supervised fine-tuning), rm (reward model), "
        "dpo (pairwise preferences: DPO, ORPO, SimPO, ...), kto (desirable/undesirable answers), "
        "ppo (PPO against reward_model or reward_funcs), "
        "grpo (group-relative policy optimization with reward_funcs) or distill (from teacher_model).",
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
    pref_beta: float = Field(
        0.1, gt=0, description="dpo/kto: beta, the strength of the pull towards the reference (or SimPO/ORPO scale)."
    )
    pref_ftx: float = Field(
        0.0, ge=0, description="dpo/kto: weight of an added SFT loss on the chosen (desirable) answers."
    )
    pref_loss: Literal["sigmoid", "hinge", "ipo", "orpo", "simpo"] = Field(
        "sigmoid", description="dpo: the loss: sigmoid (DPO), hinge, ipo, orpo or simpo (the last two reference-free)."
    )
    dpo_label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, description="dpo sigmoid loss: assumed share of flipped preference labels (cDPO)."
    )
    simpo_gamma: float = Field(0.5, description="dpo simpo loss: the target reward margin gamma.")
    kto_chosen_weight: float = Field(1.0, gt=0, description="kto: weight of the desirable answers' loss.")
    kto_rejected_weight: float = Field(1.0, gt=0, description="kto: weight of the undesirable answers' loss.")
    ref_model: str | None = Field(
        None,
        description="dpo/kto: the reference model (path, .gguf or alias); default: the base model itself "
        "(with LoRA: the base with the adapter disabled, one copy of the weights).",
    )
    ref_model_adapters: list[str] | None = Field(
        None, description="dpo/kto: LoRA adapters merged into ref_model (comma-separated)."
    )
    ref_model_quantization_bit: Literal[4, 8] | None = Field(
        None, description="dpo/kto: load ref_model in 4 or 8 bits (bitsandbytes)."
    )
    precompute_ref_log_probs: bool = Field(
        False,
        description="dpo/kto full fine-tuning: score the data with the reference once before training, so no "
        "second copy of the weights stays in memory.",
    )
    # --- stage ppo (train/ppo/, docs/stages.md) ---------------------------------------------------
    reward_model: str | None = Field(
        None,
        description="ppo: the reward model: a stage rm output_dir (full model, or a LoRA adapter: detected by its "
        "adapter_config.json, on model_name_or_path) or the http(s) URL of a scoring server (POST "
        "/v1/score/evaluation, e.g. lmforge api with stage: rm).",
    )
    reward_model_adapters: list[str] | None = Field(
        None, description="ppo: LoRA adapters merged into a full reward_model (comma-separated)."
    )
    reward_model_quantization_bit: Literal[4, 8] | None = Field(
        None, description="ppo: load a local reward_model in 4 or 8 bits (bitsandbytes)."
    )
    reward_model_type: Literal["full", "lora", "api"] | None = Field(
        None, description="ppo: what reward_model is: full, lora or api; default: detected from reward_model."
    )
    ppo_epochs: int = Field(4, gt=0, description="ppo: optimisation passes over each rollout batch.")
    ppo_buffer_size: int = Field(
        1,
        gt=0,
        description="ppo: minibatches per rollout batch; each rollout has ppo_buffer_size x "
        "per_device_train_batch_size x gradient_accumulation_steps prompts, one optimizer update per minibatch.",
    )
    ppo_target: float = Field(6.0, gt=0, description="ppo: target KL (per answer) of the adaptive KL controller.")
    ppo_adaptive_kl: bool = Field(
        True, description="ppo: adapt the KL coefficient towards ppo_target (false: keep ppo_init_kl_coef fixed)."
    )
    ppo_init_kl_coef: float = Field(0.2, ge=0, description="ppo: starting coefficient of the per-token KL penalty.")
    ppo_kl_horizon: int = Field(10000, gt=0, description="ppo: horizon (in answers) of the adaptive KL controller.")
    ppo_score_norm: bool = Field(
        False, description="ppo: normalise scores by the running mean and standard deviation of all scores so far."
    )
    ppo_whiten_rewards: bool = Field(
        False, description="ppo: whiten the per-token rewards of each batch (scale only) before GAE."
    )
    ppo_cliprange: float = Field(0.2, gt=0, description="ppo: clip range epsilon of the policy ratio.")
    ppo_cliprange_value: float = Field(0.2, gt=0, description="ppo: clip range of the value update.")
    ppo_vf_coef: float = Field(0.1, ge=0, description="ppo: weight of the value loss in the total loss.")
    ppo_gamma: float = Field(1.0, ge=0, le=1, description="ppo: discount factor gamma of GAE.")
    ppo_lam: float = Field(0.95, ge=0, le=1, description="ppo: lambda of GAE (bias-variance trade-off).")


# Method keys only some stages read: set for another stage they would be silently ignored, so
# check_method_stage_keys refuses them naming the stages that take them (a key written at its
# default changes nothing: a run_config.yaml given back as a config holds every key).
STAGE_ONLY_KEYS: dict[str, tuple[str, ...]] = {
    "pref_beta": ("dpo", "kto"), "pref_ftx": ("dpo", "kto"), "pref_loss": ("dpo",),
    "dpo_label_smoothing": ("dpo",), "simpo_gamma": ("dpo",),
    "kto_chosen_weight": ("kto",), "kto_rejected_weight": ("kto",),
    "ref_model": ("dpo", "kto", "ppo"), "ref_model_adapters": ("dpo", "kto", "ppo"),
    "ref_model_quantization_bit": ("dpo", "kto", "ppo"),
    "precompute_ref_log_probs": ("dpo", "kto"),
    **{key: ("ppo",) for key in ("reward_model", "reward_model_adapters", "reward_model_quantization_bit",
                                 "reward_model_type")},
    **{key: ("ppo",) for key in MethodConfig.model_fields if key.startswith("ppo_")},
}  # fmt: skip


def check_method_stage_keys(method: MethodConfig) -> None:
    from lmforge.errors import LmforgeError

    for key in sorted(method.model_fields_set & set(STAGE_ONLY_KEYS)):
        takes = STAGE_ONLY_KEYS[key]
        if method.stage in takes or getattr(method, key) == MethodConfig.model_fields[key].default:
            continue
        raise LmforgeError(
            f"{key} applies to stage {' or '.join(takes)}, and this run is stage {method.stage}",
            f"remove {key}, or set stage: {takes[0]}",
        )
