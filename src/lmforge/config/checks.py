"""Rules that span several keys: each failure says which key to change."""

from __future__ import annotations

from lmforge.config.method import IMPLEMENTED_STAGES
from lmforge.config.optim import check_optimizer
from lmforge.config.schema import RunConfig
from lmforge.errors import LmforgeError

LORA_ONLY_KEYS = (
    "use_dora",
    "use_rslora",
    "pissa_init",
    "loraplus_lr_ratio",
    "create_new_adapter",
    "additional_target",
)


def check_combinations(config: RunConfig) -> None:
    method, data, train = config.method, config.data, config.train
    if method.stage not in IMPLEMENTED_STAGES:
        raise LmforgeError(
            f"stage {method.stage!r} is not available in this version of lmforge",
            f"use one of: {', '.join(IMPLEMENTED_STAGES)}",
        )
    if method.finetuning_type != "lora":
        for key in LORA_ONLY_KEYS:
            if config.explicitly_set(key) and getattr(method, key) not in (False, None):
                raise LmforgeError(
                    f"{key} needs finetuning_type: lora (it is {method.finetuning_type!r})",
                    f"set finetuning_type: lora or remove {key}",
                )
        if config.model.adapter_name_or_path and train.do_train:
            raise LmforgeError(
                "adapter_name_or_path needs finetuning_type: lora to continue training an adapter",
                "set finetuning_type: lora, or merge the adapter first with lmforge export",
            )
    if method.use_dora and method.pissa_init:
        raise LmforgeError("use_dora and pissa_init cannot be combined", "choose one of them")
    if train.bf16 and train.fp16:
        raise LmforgeError("bf16 and fp16 are both on", "choose one precision")
    if data.interleave_probs is not None:
        if data.mix_strategy == "concat":
            raise LmforgeError(
                "interleave_probs needs mix_strategy: interleave_under or interleave_over",
                "set mix_strategy, or remove interleave_probs",
            )
        if data.dataset and len(data.interleave_probs) != len(data.dataset):
            raise LmforgeError(
                f"interleave_probs has {len(data.interleave_probs)} values for {len(data.dataset)} data sets",
                "give one probability per data set",
            )
    if data.streaming and data.max_samples is None and train.max_steps <= 0 and train.do_train:
        raise LmforgeError(
            "streaming needs max_steps (the length of a stream is unknown)", "set max_steps: N"
        )
    if data.streaming and data.val_size > 0:
        raise LmforgeError("val_size cannot split a streamed data set", "use eval_dataset instead")
    check_optimizer(config)
