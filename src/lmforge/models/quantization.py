"""QLoRA: base weights loaded in 4 or 8 bits by bitsandbytes, LoRA adapters trained on top.

What it costs and saves (docs/qlora.md has the numbers measured on the built-in model):

- 4-bit (``quantization_type`` nf4 or fp4) packs two weights per byte, plus one absmax per block of
  64 weights; ``double_quantization`` quantizes those absmax values again (8-bit, blocks of 256),
  saving about 0.4 bit per weight. Only the linear layers inside the decoder are quantized; the
  embedding and the LM head stay in the run's dtype.
- 8-bit (LLM.int8) stores int8 rows with one float32 scale per row (``SCB``); its matmuls cast
  inputs to float16.
- The matmuls run in the compute dtype, which follows the run's precision (bf16/fp16/fp32).
- A quantized weight is a ``Params4bit`` whose ``numel()`` counts packed bytes, not weights, and
  whose quantization state lives beside it (``quant_state``). Every count and size lmforge reports
  goes through ``param_count`` / ``param_storage_bytes`` here, so they describe the real model.

This module imports neither bitsandbytes nor transformers at import time.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import torch

from lmforge.config.model import ModelConfig
from lmforge.errors import LmforgeError

INSTALL_HINT = "pip install 'lmforge[qlora]'"
# Normalization weights by name, as LLaMA-Factory matches them for upcast_layernorm.
LAYERNORM_NAMES = ("norm", "ln")


def require_bitsandbytes(bits: int) -> None:
    """A clear message, before any weight loads, on a machine without bitsandbytes."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise LmforgeError(
            f"quantization_bit: {bits} needs the bitsandbytes package, which is not installed",
            f"install the extra: {INSTALL_HINT}, or remove quantization_bit",
        )


def compute_dtype(bf16: bool, fp16: bool) -> torch.dtype:
    """The dtype quantized matmuls run in: the run's precision (bf16/fp16 autocast or pure), else fp32."""
    if bf16:
        return torch.bfloat16
    if fp16:
        return torch.float16
    return torch.float32


def bitsandbytes_config(model_cfg: ModelConfig, dtype: torch.dtype) -> Any:
    """transformers' ``BitsAndBytesConfig`` for ``quantization_bit``, or None when not quantizing."""
    bits = model_cfg.quantization_bit
    if bits is None:
        return None
    require_bitsandbytes(bits)
    from transformers import BitsAndBytesConfig

    if bits == 8:
        _quiet_int8_cast_notice()
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=model_cfg.quantization_type,
        bnb_4bit_use_double_quant=model_cfg.double_quantization,
        bnb_4bit_compute_dtype=dtype,
    )


class _DropInt8CastNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "inputs will be cast from" not in record.getMessage()


def _quiet_int8_cast_notice() -> None:
    """bitsandbytes 0.50 logs "MatMul8bitLt: inputs will be cast ... to float16" on every int8
    matmul (every layer, every step): library noise, documented once in docs/qlora.md instead."""
    bnb_logger = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _DropInt8CastNotice) for f in bnb_logger.filters):
        bnb_logger.addFilter(_DropInt8CastNotice())


def is_quantized(model: Any) -> bool:
    """True when bitsandbytes holds some of the model's weights (also under a peft wrapper)."""
    return any(_is_packed(p) or hasattr(p, "SCB") for p in model.parameters())


def prepare_for_kbit_training(model: Any, gradient_checkpointing: bool) -> Any:
    """peft's k-bit preparation: freeze the base, upcast the non-quantized weights to fp32, and
    make checkpointed inputs require grads (reentrant, as lmforge checkpoints everywhere)."""
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": True},
    )


def upcast_layernorms(model: Any) -> int:
    """Cast normalization weights to float32 (``upcast_layernorm``); returns how many were cast."""
    cast = 0
    for name, param in model.named_parameters():
        if param.ndim == 1 and param.dtype != torch.float32 and any(n in name for n in LAYERNORM_NAMES):
            param.data = param.data.to(torch.float32)
            cast += 1
    return cast


def _is_packed(param: Any) -> bool:
    return getattr(param, "quant_state", None) is not None


def param_count(param: Any) -> int:
    """Weights a parameter stands for: the unpacked shape of a 4-bit tensor, the full size of a
    DeepSpeed ZeRO-3 partitioned one (``ds_numel``; its local ``numel()`` is 0), else ``numel()``."""
    if _is_packed(param):
        return int(torch.Size(param.quant_state.shape).numel())
    return int(getattr(param, "ds_numel", None) or param.numel())


def param_storage_bytes(param: Any) -> int:
    """Bytes a parameter really occupies, with its quantization state (absmax, code, int8 scales)."""
    size = param.numel() * param.element_size()
    state = getattr(param, "quant_state", None)
    if state is not None:
        size += sum(_tensor_bytes(t) for t in (state.absmax, state.code))
        nested = getattr(state, "state2", None)
        if nested is not None:
            size += sum(_tensor_bytes(t) for t in (nested.absmax, nested.code))
    scales = getattr(param, "SCB", None)
    if isinstance(scales, torch.Tensor):
        size += _tensor_bytes(scales)
    return size


def _tensor_bytes(tensor: Any) -> int:
    return tensor.numel() * tensor.element_size() if isinstance(tensor, torch.Tensor) else 0


def parameter_storage_bytes(model: Any) -> int:
    """Bytes the model's parameters occupy, quantization state included, each shared tensor once."""
    seen: set[int] = set()
    total = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param_storage_bytes(param)
    return total
