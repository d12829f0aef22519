"""Rules that span several keys: each failure says which key to change."""

from __future__ import annotations

from lmforge.config.data import DataConfig
from lmforge.config.method import IMPLEMENTED_STAGES, check_method_stage_keys
from lmforge.config.optim import check_optimizer
from lmforge.config.schema import RunConfig
from lmforge.config.stage_keys import check_stage_keys
from lmforge.errors import LmforgeError

LORA_ONLY_KEYS = (
    "use_dora",
    "use_rslora",
    "pissa_init",
    "loraplus_lr_ratio",
    "create_new_adapter",
    "additional_target",
)

BUFFER_SIZE_DEFAULT = DataConfig.model_fields["buffer_size"].default


def check_combinations(config: RunConfig) -> None:
    method, train = config.method, config.train
    check_quantization(config)
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
    check_data(config)
    check_optimizer(config)
    check_method_stage_keys(config.method)  # preference keys with another stage
    check_stage_keys(config)  # rewards / grpo / distill keys with another stage


def check_data(config: RunConfig) -> None:
    """Data keys that contradict each other or would be silently ignored."""
    data, train = config.data, config.train
    if data.mask_history and data.train_on_prompt:
        raise LmforgeError(
            "mask_history and train_on_prompt cannot be combined",
            "mask_history trains only the last answer, train_on_prompt every token: choose one",
        )
    if data.interleave_probs is not None:
        _check_interleave_probs(data.interleave_probs, data.dataset, data.mix_strategy)
    if train.do_eval and not data.eval_dataset and not data.val_size:
        raise LmforgeError("do_eval: true has no evaluation data", "set eval_dataset or val_size, or remove do_eval")
    # An explicit default (a run_config.yaml given back as a config) changes nothing: allowed.
    if config.explicitly_set("buffer_size") and not data.streaming and data.buffer_size != BUFFER_SIZE_DEFAULT:
        raise LmforgeError(
            "buffer_size shuffles streamed data only, and streaming is off",
            "set streaming: true, or remove buffer_size",
        )
    if data.streaming and data.max_samples is None and train.max_steps <= 0 and train.do_train:
        raise LmforgeError("streaming needs max_steps (the length of a stream is unknown)", "set max_steps: N")
    if data.streaming and data.val_size > 0:
        raise LmforgeError("val_size cannot split a streamed data set", "use eval_dataset instead")


def _check_interleave_probs(probs: list[float], datasets: list[str] | None, strategy: str) -> None:
    if strategy == "concat":
        raise LmforgeError(
            "interleave_probs needs mix_strategy: interleave_under or interleave_over",
            "set mix_strategy, or remove interleave_probs",
        )
    if datasets is not None and len(datasets) < 2:
        raise LmforgeError(
            f"interleave_probs needs two or more data sets to mix (dataset has {len(datasets)})",
            "list the data sets to mix in dataset, or remove interleave_probs",
        )
    if datasets is not None and len(probs) != len(datasets):
        raise LmforgeError(
            f"interleave_probs has {len(probs)} values for {len(datasets)} data sets",
            "give one probability per data set, in the order of dataset",
        )
    if any(p < 0 for p in probs) or abs(sum(probs) - 1) > 1e-6:
        raise LmforgeError(
            f"interleave_probs {probs} must be non-negative and sum to 1 (they sum to {sum(probs):g})",
            "e.g. interleave_probs: 0.7,0.3",
        )


def check_quantization(config: RunConfig) -> None:
    """QLoRA rules (docs/qlora.md): bitsandbytes only, LoRA only, one adapter on a quantized base."""
    model, method = config.model, config.method
    bits = model.quantization_bit
    if model.quantization_method != "bnb":
        raise LmforgeError(
            f"quantization_method: {model.quantization_method} is not supported yet "
            "(lmforge quantizes with bitsandbytes)",
            "set quantization_method: bnb with quantization_bit: 4 or 8",
        )
    if bits != 4 and (model.quantization_type != "nf4" or not model.double_quantization):
        key = "quantization_type" if model.quantization_type != "nf4" else "double_quantization"
        raise LmforgeError(
            f"{key} applies to quantization_bit: 4 only (it is {bits})", f"set quantization_bit: 4 or remove {key}"
        )
    if model.upcast_layernorm and config.train.pure_bf16 and bits is None:
        raise LmforgeError(
            "upcast_layernorm cannot combine with pure_bf16: without autocast the float32 norm outputs "
            "meet bfloat16 weights",
            "use bf16: true (mixed precision) instead of pure_bf16, or remove upcast_layernorm",
        )
    if bits is None:
        return
    if method.finetuning_type != "lora" and config.train.do_train:
        raise LmforgeError(
            f"quantization_bit: {bits} needs finetuning_type: lora (QLoRA); {method.finetuning_type} "
            "would update the quantized weights, which have no gradients",
            "set finetuning_type: lora, or remove quantization_bit",
        )
    adapters = model.adapter_name_or_path or []
    if len(adapters) > 1 or (adapters and method.create_new_adapter and config.train.do_train):
        raise LmforgeError(
            f"quantization_bit: {bits} takes one adapter to continue; merging adapters into "
            "quantized weights would round them again",
            "merge the adapters first with lmforge export (no quantization_bit), then train on the merged model",
        )
    if method.pissa_init:
        raise LmforgeError(
            "pissa_init cannot initialise from quantized weights", "remove pissa_init or quantization_bit"
        )
    if model.infer_backend == "vllm":
        raise LmforgeError(
            "infer_backend: vllm does not take quantization_bit yet", "use infer_backend: hf or remove quantization_bit"
        )
    from lmforge.models.quantization import require_bitsandbytes  # imports torch: quantized runs only

    require_bitsandbytes(bits)
