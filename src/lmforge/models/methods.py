"""Fine-tuning methods: which parameters train.

- full: every parameter.
- freeze: the last N decoder layers (or first -N), optionally only named sub-modules, plus extras.
- lora: peft adapters (rsLoRA, DoRA, PiSSA init) on ``lora_target`` modules; continue an adapter
  from ``adapter_name_or_path`` or stack a new one with ``create_new_adapter``.
"""

from __future__ import annotations

import re
from typing import Any

from lmforge.config.method import MethodConfig
from lmforge.errors import LmforgeError
from lmforge.models.quantization import is_quantized, param_count


def apply_method(model: Any, method: MethodConfig, adapters: list[str] | None) -> Any:
    if method.finetuning_type != "lora" and is_quantized(model):
        # The config checks refuse this first; here for callers that build a config by hand.
        raise LmforgeError(
            f"finetuning_type: {method.finetuning_type} cannot train a quantized base "
            "(4/8-bit weights have no gradients)",
            "use finetuning_type: lora (QLoRA), or remove quantization_bit",
        )
    if method.finetuning_type == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    if method.finetuning_type == "freeze":
        return _apply_freeze(model, method)
    return _apply_lora(model, method, adapters or [])


def _layer_count(model: Any) -> int:
    count = getattr(model.config, "num_hidden_layers", None)
    if not count:
        raise LmforgeError("finetuning_type: freeze needs a model config with num_hidden_layers")
    return int(count)


def trainable_layer_ids(num_layers: int, trainable_layers: int) -> list[int]:
    if trainable_layers > 0:
        return list(range(max(0, num_layers - trainable_layers), num_layers))
    return list(range(min(-trainable_layers, num_layers)))


def _apply_freeze(model: Any, method: MethodConfig) -> Any:
    layer_ids = trainable_layer_ids(_layer_count(model), method.freeze_trainable_layers)
    modules = method.freeze_trainable_modules
    names = {name for name, _ in model.named_parameters()}
    if "all" not in modules:
        known = {m.split(".")[0] for n in names for m in _after_layer(n)}
        unknown = [m for m in modules if m not in known]
        if unknown:
            raise LmforgeError(
                f"freeze_trainable_modules has {unknown} which no decoder layer contains",
                f"use all or some of: {', '.join(sorted(known))}",
            )
    patterns = [re.compile(_layer_pattern(i, m)) for i in layer_ids for m in modules]
    extras = method.freeze_extra_modules or []
    missing = [e for e in extras if not any(f".{e}." in f".{n}" for n in names)]
    if missing:
        raise LmforgeError(f"freeze_extra_modules {missing} match no parameter of the model")
    for name, param in model.named_parameters():
        trainable = any(p.search(name) for p in patterns) or any(f".{e}." in f".{name}" for e in extras)
        param.requires_grad_(trainable)
    return model


def _layer_pattern(layer_id: int, module: str) -> str:
    inner = "" if module == "all" else re.escape(module) + r"\."
    return rf"\.layers\.{layer_id}\." + inner


def _after_layer(name: str) -> list[str]:
    match = re.search(r"\.layers\.\d+\.(.+)$", name)
    return [match.group(1)] if match else []


def _lora_targets(model: Any, targets: list[str]) -> str | list[str]:
    if targets == ["all"] or targets == "all":
        return "all-linear"
    leaf_names = {name.split(".")[-1] for name, _ in model.named_modules()}
    unknown = [t for t in targets if t not in leaf_names]
    if unknown:
        raise LmforgeError(
            f"lora_target {unknown} matches no module of the model",
            "use lora_target: all, or module names such as q_proj, v_proj",
        )
    return targets


def _apply_lora(model: Any, method: MethodConfig, adapters: list[str]) -> Any:
    from peft import LoraConfig, get_peft_model

    if adapters:
        # Earlier adapters are merged into the base; the last one keeps training unless a new one
        # is stacked on top.
        to_merge = adapters if method.create_new_adapter else adapters[:-1]
        for path in to_merge:
            model = _load_adapter(model, path).merge_and_unload()
        if not method.create_new_adapter:
            return _load_adapter(model, adapters[-1], is_trainable=True)
    if method.pissa_init:
        init: Any = "pissa" if method.pissa_iter == -1 else f"pissa_niter_{method.pissa_iter}"
    else:
        init = True
    # A reward model (stage rm) trains and saves its new score head with the adapter.
    scores = type(model).__name__.endswith("ForSequenceClassification")
    config = LoraConfig(
        task_type="SEQ_CLS" if scores else "CAUSAL_LM",
        r=method.lora_rank,
        lora_alpha=method.lora_alpha or 2 * method.lora_rank,
        lora_dropout=method.lora_dropout,
        target_modules=_lora_targets(model, method.lora_target),
        modules_to_save=[*(method.additional_target or []), "score"] if scores else method.additional_target,
        use_rslora=method.use_rslora,
        use_dora=method.use_dora,
        init_lora_weights=init,
    )
    return get_peft_model(model, config)


def _load_adapter(model: Any, path: str, is_trainable: bool = False) -> Any:
    """peft's errors name neither the key nor the folder (an adapter of another base model fails
    deep in load_state_dict): say which adapter_name_or_path did not load, and why."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, path, is_trainable=is_trainable)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        reason = " ".join(str(err).split())[:300]
        raise LmforgeError(
            f"adapter_name_or_path: cannot load the adapter in {path}: {reason}",
            "use a LoRA adapter trained on this model_name_or_path (its output_dir or a checkpoint-N folder)",
        ) from None


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts, counting each shared tensor once and each packed
    4-bit tensor by the weights it holds (its ``numel`` counts bytes)."""
    seen: set[int] = set()
    trainable = total = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        count = param_count(param)
        total += count
        if param.requires_grad:
            trainable += count
    return trainable, total
