"""Optimizer group: LLaMA-Factory's keys for the memory-saving optimizers (docs/optimizers.md).

Full fine-tuning with AdamW keeps two fp32 moments per weight (8 bytes a parameter, twice the
fp32 weights themselves). These methods trade some of that for extra compute or a narrower
update: GaLore and APOLLO keep moments of a low-rank projection of each linear layer's gradient,
BAdam trains one block of layers at a time, Muon keeps one momentum buffer for the hidden
matrices, AdaLomo keeps factored second moments and fuses the update into backward. 8-bit
AdamW is transformers' ``optim: adamw_bnb_8bit`` (train group).

Each ``galore_*``/``apollo_*``/``badam_*`` key takes effect only with its ``use_*`` switch; the
cross-key rules (which methods, precisions and parallelism they combine with) are in
``config/checks.py``.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lmforge.errors import LmforgeError


class OptimizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    use_galore: bool = Field(False, description="GaLore: Adam moments of a low-rank projection of each gradient.")
    galore_target: list[str] = Field(
        ["all"], description="GaLore: linear modules to project (all = every linear layer but the head)."
    )
    galore_rank: int = Field(16, gt=0, description="GaLore: rank of the projected gradient.")
    galore_update_interval: int = Field(200, gt=0, description="GaLore: steps between projection updates (SVD).")
    galore_scale: float = Field(2.0, gt=0, description="GaLore: scale of the projected-back update.")
    galore_proj_type: Literal["std", "reverse_std", "right", "left", "full"] = Field(
        "std", description="GaLore: which side of each matrix is projected."
    )
    galore_layerwise: bool = Field(
        False, description="GaLore: update each weight in backward (no full gradient kept; no accumulation)."
    )
    use_apollo: bool = Field(False, description="APOLLO: Adam-like scaling from a random low-rank projection.")
    apollo_target: list[str] = Field(
        ["all"], description="APOLLO: linear modules to project (all = every linear layer but the head)."
    )
    apollo_rank: int = Field(16, gt=0, description="APOLLO: rank of the projection (1 = APOLLO-Mini).")
    apollo_update_interval: int = Field(200, gt=0, description="APOLLO: steps between projection updates.")
    apollo_scale: float = Field(32.0, gt=0, description="APOLLO: gradient scaling factor.")
    apollo_proj: Literal["svd", "random"] = Field("random", description="APOLLO: projection, random or svd.")
    apollo_proj_type: Literal["std", "right", "left"] = Field("std", description="APOLLO: side that is projected.")
    apollo_scale_type: Literal["channel", "tensor"] = Field(
        "channel", description="APOLLO: scaling per channel or per tensor (tensor with rank 1 = APOLLO-Mini)."
    )
    apollo_layerwise: bool = Field(
        False, description="APOLLO: update each weight in backward (no full gradient kept; no accumulation)."
    )
    apollo_scale_front: bool = Field(False, description="APOLLO: apply the scale before the norm-growth limiter.")
    use_badam: bool = Field(
        False, description="BAdam: block coordinate descent, Adam on one block of layers at a time."
    )
    badam_mode: Literal["layer", "ratio"] = Field("layer", description="BAdam: blocks are whole layers (layer).")
    badam_start_block: int | None = Field(None, ge=0, description="BAdam: index of the first block to train.")
    badam_switch_mode: Literal["ascending", "descending", "random", "fixed"] = Field(
        "ascending", description="BAdam: order in which blocks take turns."
    )
    badam_switch_interval: int = Field(50, description="BAdam: optimizer steps per block; -1 = never switch.")
    badam_update_ratio: float = Field(0.05, gt=0, le=1, description="BAdam ratio mode: share of each weight updated.")
    badam_mask_mode: Literal["adjacent", "scatter"] = Field(
        "adjacent", description="BAdam ratio mode: which entries are updated."
    )
    badam_verbose: int = Field(0, ge=0, le=2, description="BAdam: 1 prints the active block at each switch.")
    use_muon: bool = Field(
        False, description="Muon for the 2-D hidden matrices, AdamW for embeddings, head, norms and biases."
    )


# transformers' optim names whose optimizer comes from bitsandbytes (extra ``optim``).
BNB_OPTIMS = frozenset(
    {
        "adamw_bnb_8bit",
        "adamw_8bit",
        "paged_adamw_32bit",
        "paged_adamw_8bit",
        "ademamix",
        "ademamix_8bit",
        "paged_ademamix_32bit",
        "paged_ademamix_8bit",
        "lion_8bit",
        "lion_32bit",
        "paged_lion_32bit",
        "paged_lion_8bit",
        "rmsprop_bnb",
        "rmsprop_bnb_8bit",
        "rmsprop_bnb_32bit",
    }
)
LOMO_OPTIMS = frozenset({"lomo", "adalomo"})
# The optimizers GaLore wraps, by the transformers name of their full-rank version.
GALORE_BASES = {
    "adamw_torch": "GaLoreAdamW",
    "adamw_torch_fused": "GaLoreAdamW",
    "adamw_bnb_8bit": "GaLoreAdamW8bit",
    "adamw_8bit": "GaLoreAdamW8bit",
    "adafactor": "GaLoreAdafactor",
}
PLAIN_ADAMW = ("adamw_torch", "adamw_torch_fused")
EXTRA_HINT = "install the extra: pip install 'lmforge[optim]'"
SWITCHES = ("use_galore", "use_apollo", "use_badam", "use_muon")
PREFIXES = {"galore_": "use_galore", "apollo_": "use_apollo", "badam_": "use_badam"}


def chosen_optimizer(optimizer: OptimizerConfig) -> str | None:
    """The ``use_*`` switch that is on (checks make sure at most one is)."""
    on = [name for name in SWITCHES if getattr(optimizer, name)]
    return on[0] if on else None


def is_layerwise(optimizer: OptimizerConfig) -> bool:
    return (optimizer.use_galore and optimizer.galore_layerwise) or (
        optimizer.use_apollo and optimizer.apollo_layerwise
    )


def _differs_from_default(opt: Any, key: str) -> bool:
    """Set to a value that would change something: a run_config.yaml lists every default explicitly
    and must load back."""
    return key in opt.model_fields_set and getattr(opt, key) != OptimizerConfig.model_fields[key].default


def check_optimizer(config: Any) -> None:
    """Refuse what the optimizer libraries cannot do, with the reason, before anything is written."""
    opt, train = config.optimizer, config.train
    for prefix, switch in PREFIXES.items():
        for key in OptimizerConfig.model_fields:
            if key.startswith(prefix) and _differs_from_default(opt, key) and not getattr(opt, switch):
                raise LmforgeError(f"{key} takes effect only with {switch}: true", f"set {switch}, or remove {key}")
    on = [name for name in SWITCHES if getattr(opt, name)]
    fused = train.optim in LOMO_OPTIMS
    if len(on) + fused > 1:
        names = [*on, *([f"optim: {train.optim}"] if fused else [])]
        raise LmforgeError(f"two optimizers at once: {' and '.join(names)}", "choose one of them")
    _check_optim_name(train.optim, on[0] if on else None)
    if on or fused:
        what = on[0] if on else f"optim: {train.optim}"
        for key in ("optim_target_modules", "optim_args"):
            if train.extra.get(key) is not None:
                raise LmforgeError(
                    f"{key} is read by transformers' own optimizers, not by {what}",
                    f"remove {key} (use the galore_*/apollo_*/badam_* keys)",
                )
        if config.method.loraplus_lr_ratio is not None:
            raise LmforgeError(
                f"loraplus_lr_ratio builds its own AdamW groups; it cannot combine with {what}", "choose one of them"
            )
    if on:
        _check_switch(config, on[0])
    if fused or is_layerwise(opt):
        what = f"optim: {train.optim}" if fused else on[0].replace("use_", "") + "_layerwise"
        _check_update_in_backward(config, what)
    if (on or fused) and "deepspeed" in train.extra and train.extra["deepspeed"]:
        what = on[0] if on else f"optim: {train.optim}"
        raise LmforgeError(
            f"{what} is not wired for DeepSpeed (ZeRO flattens and shards the weights these optimizers need whole)",
            "remove deepspeed, or use AdamW with DeepSpeed",
        )


def _check_optim_name(name: str, switch: str | None) -> None:
    if name.startswith(("galore_", "apollo_")):
        key = "use_galore" if name.startswith("galore_") else "use_apollo"
        raise LmforgeError(
            f"optim: {name} is spelled {key}: true here (transformers' handler drops weight_decay and Adam betas)",
            f"set {key}: true with its {key[4:]}_* keys and keep optim: adamw_torch",
        )
    if name in BNB_OPTIMS and importlib.util.find_spec("bitsandbytes") is None:
        raise LmforgeError(f"optim: {name} needs bitsandbytes, which is not installed", EXTRA_HINT)
    if name in LOMO_OPTIMS and importlib.util.find_spec("lomo_optim") is None:
        raise LmforgeError(f"optim: {name} needs lomo-optim, which is not installed", EXTRA_HINT)
    if switch == "use_galore" and name not in GALORE_BASES:
        raise LmforgeError(
            f"use_galore wraps AdamW, 8-bit AdamW or Adafactor, not optim: {name}",
            f"set optim to one of {', '.join(GALORE_BASES)}",
        )
    if switch == "use_galore" and "8bit" in name and not _has_cuda():
        raise LmforgeError(
            f"use_galore with optim: {name} needs a CUDA GPU (galore_torch's 8-bit AdamW runs CUDA kernels only)",
            "use optim: adamw_torch on this machine",
        )
    if switch in ("use_apollo", "use_muon") and name not in PLAIN_ADAMW:
        raise LmforgeError(f"{switch} brings its own update rule; optim: {name} would be ignored", "remove optim")


def _check_switch(config: Any, switch: str) -> None:
    opt, method = config.optimizer, config.method
    library = {"use_galore": "galore_torch", "use_apollo": "apollo_torch", "use_badam": "badam"}.get(switch)
    if library and importlib.util.find_spec(library) is None:
        raise LmforgeError(f"{switch} needs the {library} package, which is not installed", EXTRA_HINT)
    if switch in ("use_galore", "use_apollo") and method.finetuning_type == "lora":
        raise LmforgeError(
            f"{switch} projects full weight gradients; with finetuning_type: lora only small adapters train",
            "set finetuning_type: full (or freeze), or remove " + switch,
        )
    if switch == "use_badam":
        if method.finetuning_type != "full":
            raise LmforgeError(
                f"use_badam chooses which layers train itself; it needs finetuning_type: full "
                f"(it is {method.finetuning_type!r})",
                "set finetuning_type: full",
            )
        if opt.badam_mode == "ratio":
            raise LmforgeError(
                "badam_mode: ratio is not available in this version (its sparse gradients need a patched clipping)",
                "use badam_mode: layer",
            )
        for key in ("badam_update_ratio", "badam_mask_mode"):
            if opt.badam_mode == "layer" and config.explicitly_set(key):
                raise LmforgeError(f"{key} applies to badam_mode: ratio only", f"remove {key}")
        if opt.badam_switch_interval == 0 or opt.badam_switch_interval < -1:
            raise LmforgeError("badam_switch_interval must be a positive number of steps, or -1", "set it to e.g. 50")
        if _world_size() > 1:
            raise LmforgeError(
                "use_badam runs on one process here (switching blocks changes which weights DDP must reduce)",
                "run without torchrun, or use another optimizer",
            )


def _check_update_in_backward(config: Any, what: str) -> None:
    """Layer-wise GaLore/APOLLO and LOMO update each weight as its gradient arrives in backward."""
    train = config.train
    if train.gradient_accumulation_steps > 1:
        raise LmforgeError(
            f"{what} updates each weight during backward, so it cannot accumulate gradients "
            f"(gradient_accumulation_steps: {train.gradient_accumulation_steps})",
            "set gradient_accumulation_steps: 1 and raise per_device_train_batch_size instead",
        )
    if _world_size() > 1:
        raise LmforgeError(
            f"{what} updates weights before DDP averages the gradients across processes",
            "run on one process, or turn the layer-wise/fused update off",
        )
    if config.explicitly_set("max_grad_norm") and train.max_grad_norm > 0:
        raise LmforgeError(
            f"{what} has applied the update before the whole gradient exists, so max_grad_norm cannot clip it",
            "set max_grad_norm: 0 (clipping is off for this optimizer)",
        )
    if train.skip_nonfinite_steps:
        raise LmforgeError(
            f"{what} has applied the update by the time a non-finite loss is seen, so the step cannot be skipped",
            "remove skip_nonfinite_steps",
        )
    if train.resume_from_checkpoint and "layerwise" in what:
        raise LmforgeError(
            f"{what}: transformers does not checkpoint the per-weight optimizers and schedulers in the backward hooks,"
            " so a resume would restart their state",
            "resume without the layer-wise update, or start a new run",
        )


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))
