"""Device facts that decide dtype and kernels: one place, so no code hard-codes the CPU."""

from __future__ import annotations

import os

import torch


def has_cuda() -> bool:
    return torch.cuda.is_available()


def has_mps() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def best_device() -> torch.device:
    """The device this process should run a model on: its own GPU (``cuda:$LOCAL_RANK``, so each
    process of a multi-process launch takes a different one), else Apple's MPS, else the CPU."""
    if has_cuda():
        # One visible GPU per process (CUDA_VISIBLE_DEVICES set per rank) is index 0 in each.
        return torch.device("cuda", local_rank() % max(torch.cuda.device_count(), 1))
    if has_mps():
        return torch.device("mps")
    return torch.device("cpu")


def local_rank() -> int:
    """This process's index on its machine (torchrun/accelerate/deepspeed set ``LOCAL_RANK``); 0 alone."""
    raw = os.environ.get("LOCAL_RANK", "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        from lmforge.errors import LmforgeError

        raise LmforgeError(f"LOCAL_RANK={raw!r} is not a process index", "unset LOCAL_RANK or set it to 0, 1, ...")
    return int(raw)


def supports_bf16() -> bool:
    return has_cuda() and torch.cuda.is_bf16_supported()


def training_precision(bf16: bool | None, fp16: bool, pure_bf16: bool) -> tuple[torch.dtype, bool, bool]:
    """(dtype to load weights in, bf16 autocast, fp16 autocast) for training.

    Weights stay fp32 with mixed precision (an fp32 master copy); ``pure_bf16`` loads bf16 directly.
    ``bf16: null`` means bf16 where the GPU supports it; on CPU fp32 (bf16 matmuls are ~7x slower there).
    """
    if pure_bf16:
        return torch.bfloat16, False, False
    use_bf16 = supports_bf16() if bf16 is None else bf16
    if fp16:
        return torch.float32, False, True
    return torch.float32, use_bf16, False


def inference_dtype(name: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if supports_bf16() else torch.float32
    return getattr(torch, name)


def attention_implementation(flash_attn: str) -> str:
    """Map LLaMA-Factory's flash_attn values to transformers' attn_implementation."""
    if flash_attn in ("auto", "sdpa"):
        return "sdpa"
    if flash_attn == "disabled":
        return "eager"
    from lmforge.errors import LmforgeError

    package = "flash_attn" if flash_attn == "fa2" else "flash_attn_interface"
    try:
        __import__(package)
    except ImportError:
        raise LmforgeError(
            f"flash_attn: {flash_attn} needs the {package} package and a CUDA GPU",
            "install flash-attn on a GPU machine, or use flash_attn: auto (SDPA)",
        ) from None
    return "flash_attention_2" if flash_attn == "fa2" else "flash_attention_3"
