"""stage ppo: reinforcement learning from a reward (Ouyang et al. 2022), on our own PPO module
(train/ppo/: trl 1.16 has no PPO any more).

Rows: prompts (everything before the last assistant turn, data/prompts.py; the last answer, when
present, is the reference for reward functions). The policy samples an answer per prompt, a reward
scores it — ``reward_model`` (a stage rm output: full model or LoRA adapter; or an http(s) scoring
server) or ``reward_funcs`` — and PPO updates the policy and its value head against the score minus
a per-token KL penalty towards the frozen reference. Logged per step: loss, reward/mean, kl,
kl_coef, policy_loss, value_loss, clip_fraction, approx_kl, response_length.

Memory: the policy (+ value head: one linear layer), its optimizer state, and the reference — with
LoRA the base with the adapter disabled (no second copy), with full fine-tuning a frozen copy of the
starting weights (or ``ref_model``) — plus a local reward model. Compute per step: generation of
every answer (one token per forward), one no-grad forward each of policy and reference, and
``ppo_epochs`` forward/backward passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from lmforge.data.encoders import PROMPTS
from lmforge.errors import LmforgeError
from lmforge.train.ppo.trainer import PpoTrainer
from lmforge.train.stages import Stage, StageParts, trainer_kwargs

REF_KEYS = ("ref_model_adapters", "ref_model_quantization_bit")


def check_ppo(cfg: Any) -> None:
    """Everything ppo cannot honour, and a reward that is missing or is not a reward model, refused
    before any weight loads."""
    from lmforge.config.optim import LOMO_OPTIMS, is_layerwise
    from lmforge.train.ppo.scores import check_reward_model, reward_model_type
    from lmforge.train.rewards import load_reward_functions

    data, method, train = cfg.data, cfg.method, cfg.train
    if method.reward_model is None and not cfg.rewards.reward_funcs:
        raise LmforgeError(
            "stage ppo has no reward: neither reward_model nor reward_funcs is set",
            "set reward_model (a stage rm output_dir, or the URL of a scoring server) or reward_funcs "
            "(e.g. reward_funcs: exact_match, or your own as path.py:function)",
        )
    if method.reward_model is not None and cfg.rewards.reward_funcs:
        raise LmforgeError("stage ppo takes one reward: reward_model and reward_funcs are both set", "remove one")
    if method.reward_model is None:
        for key in ("reward_model_adapters", "reward_model_quantization_bit", "reward_model_type"):
            if getattr(method, key) is not None:
                raise LmforgeError(f"{key} is set but reward_model is not", f"set reward_model or remove {key}")
        load_reward_functions(cfg)  # refuses functions that do not import or take the wrong arguments
    else:
        kind = reward_model_type(method.reward_model, method.reward_model_type)
        if kind != "full" and (method.reward_model_adapters or method.reward_model_quantization_bit):
            key = "reward_model_adapters" if method.reward_model_adapters else "reward_model_quantization_bit"
            raise LmforgeError(f"{key} applies to a full reward_model, and this one is {kind}", f"remove {key}")
        check_reward_model(method.reward_model, kind)
    if method.ref_model is None and any(getattr(method, key) for key in REF_KEYS):
        raise LmforgeError("ref_model_adapters and ref_model_quantization_bit need ref_model", "set ref_model")
    if method.precompute_ref_log_probs:
        raise LmforgeError(
            "precompute_ref_log_probs cannot be used with stage ppo: the answers are generated during training",
            "remove precompute_ref_log_probs",
        )
    for key, on in (("packing", data.packing), ("neat_packing", data.neat_packing), ("streaming", data.streaming),
                    ("train_on_prompt", data.train_on_prompt), ("mask_history", data.mask_history)):  # fmt: skip
        if on:
            raise LmforgeError(f"{key} cannot be used with stage ppo: it trains on its own sampled answers",
                               f"remove {key}")  # fmt: skip
    if train.do_eval or train.eval_strategy != "no" or data.eval_dataset or data.val_size:
        raise LmforgeError(
            "stage ppo has no evaluation: do_eval, eval_strategy, eval_dataset and val_size do not apply",
            "remove them (the per-step reward/mean in trainer_log.jsonl is the measure)",
        )
    if cfg.generate.num_beams > 1:
        raise LmforgeError("stage ppo samples its answers: num_beams > 1 does not apply", "set num_beams: 1")
    special = [key for key in ("use_galore", "use_apollo", "use_badam", "use_muon") if getattr(cfg.optimizer, key)]
    if train.optim in LOMO_OPTIMS or is_layerwise(cfg.optimizer) or special:
        name = special[0] if special else f"optim: {train.optim}"
        raise LmforgeError(
            f"{name} cannot be used with stage ppo: ppo steps the optimizer between its minibatches and adds its "
            "value head to it, which LOMO/AdaLomo, GaLore, APOLLO, BAdam and Muon do not support yet",
            "use a transformers optimizer (e.g. optim: adamw_torch or adamw_bnb_8bit)",
        )
    if any(getattr(train, key, None) or train.extra.get(key) for key in ("deepspeed", "fsdp")):
        raise LmforgeError("stage ppo does not run under DeepSpeed or FSDP yet", "remove deepspeed/fsdp")


def reward_model_config(cfg: Any) -> Any:
    """The local reward model's ModelConfig: a full model (+ adapters), or the run's base with the
    LoRA reward adapter (LLaMA-Factory's lora type: the adapter was trained on the same base)."""
    from lmforge.train.ppo.scores import reward_model_type

    method = cfg.method
    if reward_model_type(method.reward_model, method.reward_model_type) == "lora":
        return cfg.model.model_copy(update={"adapter_name_or_path": [method.reward_model], "quantization_bit": None})
    return cfg.model.model_copy(
        update={
            "model_name_or_path": method.reward_model,
            "adapter_name_or_path": method.reward_model_adapters,
            "quantization_bit": method.reward_model_quantization_bit,
        }
    )


def load_models(cfg: Any, tokenizer: Any) -> dict[str, Any]:
    """``reward`` (a local reward model) and ``reference`` (unless LoRA disables its adapter)."""
    from lmforge.models.loader import load_model
    from lmforge.train.ppo.scores import reward_model_type

    method = cfg.method
    models: dict[str, Any] = {}
    if method.reward_model is not None and reward_model_type(method.reward_model, method.reward_model_type) != "api":
        models["reward"] = load_model(reward_model_config(cfg), tokenizer, train=cfg.train, head="seq_cls")
    if method.ref_model is not None:
        ref = cfg.model.model_copy(update={"model_name_or_path": method.ref_model,
                                           "adapter_name_or_path": method.ref_model_adapters,
                                           "quantization_bit": method.ref_model_quantization_bit})  # fmt: skip
        models["reference"] = load_model(ref, tokenizer, train=cfg.train)
    elif method.finetuning_type != "lora":
        models["reference"] = load_model(cfg.model, tokenizer, train=cfg.train)  # the starting weights, frozen
    return models


@dataclass
class PromptCollator:
    """Prompt rows: ``prompt_ids`` and ``references`` as lists (the rollout's input), and the
    right-padded ``input_ids`` / ``attention_mask`` the step metrics count."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        prompts = [list(f["prompt_ids"]) for f in features]
        width = max(len(p) for p in prompts)
        ids = [p + [self.pad_token_id] * (width - len(p)) for p in prompts]
        mask = [[1] * len(p) + [0] * (width - len(p)) for p in prompts]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "prompt_ids": prompts,
                "references": [f.get("reference") for f in features]}  # fmt: skip


def prompt_collator(cfg: Any, tokenizer: Any) -> PromptCollator:
    from lmforge.data.collator import pad_token_id

    return PromptCollator(pad_token_id(tokenizer))


def build_trainer(parts: StageParts) -> Any:
    from lmforge.infer.hf_engine import eos_token_ids
    from lmforge.infer.params import SamplingParams
    from lmforge.train.ppo.scores import FunctionScores, HttpScores, RewardModelScores
    from lmforge.train.rewards import load_reward_functions

    cfg, tokenizer = parts.cfg, parts.tokenizer
    method = cfg.method
    scorer: Any
    if "reward" in parts.models:
        reward = parts.models["reward"].to(parts.args.device)
        scorer = RewardModelScores(reward, tokenizer.pad_token_id, parts.args.per_device_train_batch_size)
    elif method.reward_model is not None:
        scorer = HttpScores(method.reward_model, cfg.model.model_name_or_path)
    else:
        scorer = FunctionScores(load_reward_functions(cfg))
    sampling = SamplingParams.from_config(cfg.generate).updated(skip_special_tokens=False)
    return PpoTrainer(
        **trainer_kwargs(parts),
        method=method,
        sampling=sampling,
        scorer=scorer,
        eos_ids=eos_token_ids(parts.model, tokenizer, parts.template),
        ref_model=parts.models.get("reference"),
    )


STAGE = Stage(
    name="ppo",
    encoding=PROMPTS,
    collator=prompt_collator,
    build_trainer=build_trainer,
    check=check_ppo,
    load_models=load_models,
)
