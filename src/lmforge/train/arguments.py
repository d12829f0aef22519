"""RunConfig → transformers TrainingArguments, with device-aware precision and pass-through keys."""

from __future__ import annotations

import os
from typing import Any

from lmforge.config.optim import LOMO_OPTIMS, is_layerwise
from lmforge.config.schema import RunConfig
from lmforge.errors import LmforgeError
from lmforge.models.device import has_cuda, training_precision

# Our keys that TrainingArguments takes under the same name.
SAME_NAME = (
    "do_train",
    "do_eval",
    "output_dir",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "max_grad_norm",
    "optim",
    "logging_steps",
    "save_steps",
    "save_total_limit",
    "save_strategy",
    "eval_strategy",
    "eval_steps",
    "seed",
    "ddp_timeout",
)


def build_training_arguments(cfg: RunConfig) -> Any:
    from transformers import TrainingArguments

    train = cfg.train
    _, bf16, fp16 = training_precision(train.bf16, train.fp16, train.pure_bf16)
    kwargs: dict[str, Any] = {key: getattr(train, key) for key in SAME_NAME}
    if train.warmup_ratio and not train.warmup_steps:
        kwargs["warmup_steps"] = train.warmup_ratio  # transformers 5: a float < 1 is a ratio
    kwargs.update(
        bf16=bf16,
        fp16=fp16,
        use_cpu=not has_cuda(),
        report_to=[],  # trackers come from train/reliability/trackers.py (offline modes, scoped env)
        remove_unused_columns=False,  # our collator reads position_ids etc.
        logging_first_step=True,
        disable_tqdm=False,
        data_seed=train.seed,
    )
    if train.optim in LOMO_OPTIMS or is_layerwise(cfg.optimizer):
        kwargs["max_grad_norm"] = 0.0  # updates happen in backward, before the whole gradient exists
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    extra = dict(train.extra)
    if world_size > 1:
        kwargs["ddp_find_unused_parameters"] = False
        if not has_cuda():
            kwargs["ddp_backend"] = "gloo"
            if not extra.get("deepspeed"):  # _deepspeed makes its own group
                _gloo_process_group(train.ddp_timeout)
    if extra.get("deepspeed"):  # docs/distributed.md: a shipped name or a JSON file, auto values filled
        extra["deepspeed"] = _deepspeed(cfg, extra["deepspeed"], bf16, fp16, world_size)
    if extra.get("fsdp"):
        _check_fsdp(extra)
    kwargs.update(extra)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        return TrainingArguments(**kwargs)
    except (TypeError, ValueError) as err:
        raise LmforgeError(f"invalid training arguments: {err}") from None


def _gloo_process_group(seconds: int) -> None:
    """The CPU process group, made here with ``ddp_timeout``: transformers 5.23 passes the timeout
    to it on GPUs only (its use_cpu branch drops it), so a rank that stalled held the others for
    torch's 30-minute default. accelerate uses a group that already exists."""
    from datetime import timedelta

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=timedelta(seconds=seconds))


def _deepspeed(cfg: RunConfig, value: Any, bf16: bool, fp16: bool, world_size: int) -> dict[str, Any]:
    """The filled DeepSpeed config; on CPU the process group is gloo, made before the arguments
    (DeepSpeed would look for MPI or oneCCL otherwise; ZeRO-3 needs the group at model load)."""
    from lmforge.distributed.deepspeed import fill_deepspeed_config, load_deepspeed_config

    config = fill_deepspeed_config(load_deepspeed_config(value), cfg, bf16, fp16, world_size, has_cuda())
    try:
        import deepspeed
    except ImportError:
        raise LmforgeError("deepspeed: DeepSpeed is not installed", "pip install 'lmforge[deepspeed]'") from None
    if not has_cuda() and "RANK" not in os.environ:
        raise LmforgeError(
            "deepspeed on CPU needs a launcher (it looks for MPI otherwise)",
            "launch with FORCE_TORCHRUN=1 lmforge train ... (or torchrun -m lmforge train ...)",
        )
    if not has_cuda():
        from datetime import timedelta

        deepspeed.init_distributed(dist_backend="gloo", timeout=timedelta(seconds=cfg.train.ddp_timeout))
    return config


def _check_fsdp(extra: dict[str, Any]) -> None:
    """FSDP through transformers' ``fsdp``/``fsdp_config`` keys needs several processes; on CPU it is
    refused (docs/distributed.md: the CPU spike result) rather than left to hang or fail late."""
    if "RANK" not in os.environ:
        raise LmforgeError(
            "fsdp needs several processes",
            "launch with NPROC_PER_NODE=<GPUs> lmforge train ... (or FORCE_TORCHRUN=1), or remove fsdp",
        )
