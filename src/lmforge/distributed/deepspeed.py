"""``deepspeed: ds_z2`` (a shipped config) or ``deepspeed: path/to/ds_config.json``, filled from the run.

The shipped configs (templates/ds_z0, ds_z2, ds_z2_offload, ds_z3, ds_z3_offload: LLaMA-Factory's
set) say ``auto`` where the value belongs to the run. We fill those from the run config here, so
the dict handed to transformers (and validated by DeepSpeed) is the filled one; a number the user
wrote that contradicts the run (``train_micro_batch_size_per_gpu: 4`` with
``per_device_train_batch_size: 1``) is refused now, naming both keys, instead of after the model
loaded. Values that depend on the model's size (ZeRO-3 bucket sizes) stay ``auto``: transformers
fills them from the hidden size once the model exists.

What each costs: ZeRO-2 shards optimizer state and gradients (memory per GPU falls with the
number of GPUs; about the speed of DDP); ZeRO-3 also shards the weights (largest models; more
communication, slower); ``_offload`` moves optimizer state (and with ZeRO-3 the weights) to CPU
memory: the least GPU memory, much slower steps, and it compiles DeepSpeed's cpu_adam on first use.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from lmforge.errors import LmforgeError

SHIPPED = ("ds_z0", "ds_z2", "ds_z2_offload", "ds_z3", "ds_z3_offload")


def load_deepspeed_config(value: str | dict[str, Any]) -> dict[str, Any]:
    """The config as a dict: a shipped name, a JSON file, or a dict given inline in the YAML."""
    if isinstance(value, dict):
        return json.loads(json.dumps(value))
    name = str(value).strip()
    if name in SHIPPED:
        text = resources.files("lmforge.distributed").joinpath("templates", f"{name}.json").read_text("utf-8")
        return json.loads(text)
    path = Path(name)
    if not path.is_file():
        raise LmforgeError(
            f"deepspeed: {name} is neither a shipped config nor a file",
            f"use one of {', '.join(SHIPPED)}, or the path of a DeepSpeed JSON config",
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise LmforgeError(
            f"deepspeed: {path} is not valid JSON ({err})", "fix the file, or use a shipped name"
        ) from None
    if not isinstance(config, dict):
        raise LmforgeError(f"deepspeed: {path} holds no JSON object", "a DeepSpeed config is a JSON object {...}")
    return config


def fill_deepspeed_config(
    config: dict[str, Any], cfg: Any, bf16: bool, fp16: bool, world_size: int, cuda: bool
) -> dict[str, Any]:
    """Replace the run's ``auto`` values; refuse numbers that contradict the run config."""
    train = cfg.train
    micro, accum = train.per_device_train_batch_size, train.gradient_accumulation_steps
    run_values = {
        "train_micro_batch_size_per_gpu": (micro, "per_device_train_batch_size"),
        "gradient_accumulation_steps": (accum, "gradient_accumulation_steps"),
        "train_batch_size": (
            micro * accum * world_size,
            "per_device_train_batch_size x gradient_accumulation_steps x world size",
        ),
        "gradient_clipping": (train.max_grad_norm, "max_grad_norm"),
    }
    for key, (value, ours) in run_values.items():
        given = config.get(key, "auto")
        if given == "auto":
            config[key] = value
        elif given != value:
            raise LmforgeError(
                f"deepspeed config: {key} is {given} but the run has {ours} = {value}",
                f'set "{key}": "auto" in the DeepSpeed config (lmforge fills it), or change {ours}',
            )
    for section, on in (("bf16", bf16), ("fp16", fp16)):
        block = config.get(section)
        if isinstance(block, dict) and block.get("enabled") == "auto":
            block["enabled"] = on
    zero = config.get("zero_optimization", {})
    for offload in ("offload_optimizer", "offload_param"):
        block = zero.get(offload)
        if isinstance(block, dict) and block.get("pin_memory") == "auto":
            block["pin_memory"] = cuda  # pinned host memory needs a GPU driver
    _fill_optimizer(config, train)
    return config


def _fill_optimizer(config: dict[str, Any], train: Any) -> None:
    params = config.get("optimizer", {}).get("params", {})
    for key, value in (("lr", train.learning_rate), ("weight_decay", train.weight_decay)):
        if params.get(key) == "auto":
            params[key] = value
