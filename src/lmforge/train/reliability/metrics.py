"""Throughput, memory and MFU for every logging step (merged into the Trainer's logs).

Fields added to each training log (hence trainer_log.jsonl and every tracker):

- ``tokens_per_sec``: non-padding input tokens per second over the logging window, all ranks
  (local count x world size). Padding is excluded so packing and padding compare fairly.
- ``samples_per_sec``: sequences per second (a packed row counts each packed sample).
- ``rss_gb``: this process' resident memory (psutil).
- ``cuda_allocated_gb`` / ``cuda_reserved_gb`` / ``cuda_peak_allocated_gb``: on GPU only.
- ``mfu``: model FLOPs utilisation, on GPU with a known peak only (see ``model_flops_utilization``).
- ``optimizer_state_mb``: bytes of the optimizer's state tensors (moments, projections), in MB.

Counting costs one host sync per micro-batch (reading the mask sum), as the Trainer's own
NaN filter already does.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

# Dense peak FLOP/s per GPU for bf16/fp16 tensor cores (vendor datasheets, no sparsity).
PEAK_FLOPS_BF16: dict[str, float] = {
    "H200": 989e12,
    "H100": 989e12,  # SXM; PCIe is 756e12 and is matched first below
    "H100 PCIe": 756e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
    "V100": 125e12,
    "T4": 65e12,
}


def peak_flops_per_second(device_name: str) -> float | None:
    """Peak dense bf16 FLOP/s of a GPU by its name; ``LMFORGE_PEAK_FLOPS`` overrides; None if unknown."""
    override = os.environ.get("LMFORGE_PEAK_FLOPS")
    if override:
        return float(override)
    for key in sorted(PEAK_FLOPS_BF16, key=len, reverse=True):  # longest first: "H100 PCIe" before "H100"
        if key.lower() in device_name.lower():
            return PEAK_FLOPS_BF16[key]
    return None


def model_flops_utilization(
    tokens_per_sec: float, n_params: int, n_layers: int, hidden_size: int, seq_len: int, peak_flops: float
) -> float:
    """MFU = (6N + 12·L·d·T) × tokens/s ÷ peak FLOP/s (PaLM, appendix B).

    6N counts forward + backward matmuls with the weights (N = parameters doing matmuls per
    token: all parameters, minus the input embedding when it is not tied to the LM head);
    12·L·d·T the attention scores and values over a sequence of T tokens (L layers, width d).
    Recomputation (gradient checkpointing) is not counted: it is overhead, not model FLOPs.
    """
    per_token = 6 * n_params + 12 * n_layers * hidden_size * seq_len
    return per_token * tokens_per_sec / peak_flops


def matmul_params(model: Any) -> int:
    """N for MFU: parameters used in matmuls per token (input embedding excluded unless tied);
    packed 4-bit weights count as the weights they hold."""
    from lmforge.models.quantization import param_count

    total = sum(param_count(p) for p in model.parameters())
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embed is None:
        return total
    tied = bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))
    return total if tied else total - embed.weight.numel()


class StepMetrics:
    """Counts tokens and samples of each micro-batch; ``collect`` turns a window into rates."""

    def __init__(self, world_size: int = 1) -> None:
        self.world_size = world_size
        self._window_start: float | None = None
        self._tokens = 0
        self._samples = 0
        self._seq_len = 0

    def count_batch(self, inputs: dict[str, Any]) -> None:
        """Call once per micro-batch with the collated inputs (before the forward pass)."""
        if self._window_start is None:
            self._window_start = time.perf_counter()
        ids = inputs.get("input_ids") if hasattr(inputs, "get") else None  # trl's GRPO: raw rows, counted later
        if not isinstance(ids, torch.Tensor):
            return
        mask = inputs.get("attention_mask")
        positions = inputs.get("position_ids")
        if isinstance(mask, torch.Tensor):
            self._tokens += int(mask.sum())
            self._samples += ids.shape[0]
        else:
            self._tokens += ids.numel()
            # Packed rows without a mask: each sample starts where position_ids restart at 0.
            self._samples += int((positions == 0).sum()) if isinstance(positions, torch.Tensor) else ids.shape[0]
        self._seq_len = max(self._seq_len, ids.shape[-1])

    def collect(self, model: Any | None = None, optimizer: Any | None = None) -> dict[str, float]:
        """Rates since the previous ``collect`` plus memory now; resets the window."""
        out: dict[str, float] = {}
        if self._window_start is not None:
            elapsed = max(time.perf_counter() - self._window_start, 1e-9)
            tokens_per_sec = self._tokens * self.world_size / elapsed
            out["tokens_per_sec"] = round(tokens_per_sec, 2)
            out["samples_per_sec"] = round(self._samples * self.world_size / elapsed, 3)
            mfu = self._mfu(model, tokens_per_sec / self.world_size)
            if mfu is not None:
                out["mfu"] = round(mfu, 4)
        out.update(memory_metrics())
        if optimizer is not None:
            out["optimizer_state_mb"] = round(optimizer_state_bytes(optimizer) / 1e6, 3)
        self._window_start, self._tokens, self._samples, self._seq_len = None, 0, 0, 0
        return out

    def _mfu(self, model: Any | None, local_tokens_per_sec: float) -> float | None:
        if model is None or not torch.cuda.is_available() or self._seq_len == 0:
            return None
        peak = peak_flops_per_second(torch.cuda.get_device_name())
        config = getattr(model, "config", None)
        layers = getattr(config, "num_hidden_layers", None)
        hidden = getattr(config, "hidden_size", None)
        if peak is None or layers is None or hidden is None:
            return None
        return model_flops_utilization(local_tokens_per_sec, matmul_params(model), layers, hidden, self._seq_len, peak)


def memory_metrics() -> dict[str, float]:
    """Process RSS, and CUDA allocated/reserved/peak on GPU, in GB."""
    import psutil

    out = {"rss_gb": round(psutil.Process().memory_info().rss / 1e9, 3)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_allocated_gb"] = round(torch.cuda.memory_allocated() / 1e9, 3)
        out["cuda_reserved_gb"] = round(torch.cuda.memory_reserved() / 1e9, 3)
        out["cuda_peak_allocated_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 3)
    return out


def optimizer_state_bytes(optimizer: Any) -> int:
    """Bytes of the tensors an optimizer keeps between steps: moments, projections, factored
    statistics (0 before the first step for optimizers that allocate lazily, like AdamW).

    Looks through accelerate's wrapper, transformers' layer-wise dummy (``optimizer_dict``) and
    optimizers that keep state outside ``optimizer.state`` (they expose ``state_tensors()``).
    """
    inner = getattr(optimizer, "optimizer", None)
    if isinstance(inner, torch.optim.Optimizer):
        return optimizer_state_bytes(inner)
    if getattr(optimizer, "optimizer_dict", None) is not None:
        return sum(optimizer_state_bytes(o) for o in set(optimizer.optimizer_dict.values()))
    roots = optimizer.state_tensors() if hasattr(optimizer, "state_tensors") else [optimizer.state]
    seen: set[int] = set()
    return sum(_tensor_bytes(root, seen, depth=0) for root in roots)


def _tensor_bytes(value: Any, seen: set[int], depth: int) -> int:
    """Sum of tensor bytes in nested dicts/lists and plain objects (GaLore's projectors), each once."""
    if isinstance(value, torch.Tensor):
        if id(value) in seen:
            return 0
        seen.add(id(value))
        return value.numel() * value.element_size()
    if depth > 4 or isinstance(value, (torch.nn.Module, torch.optim.Optimizer, str, bytes)):
        return 0
    if isinstance(value, dict):
        return sum(_tensor_bytes(v, seen, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v, seen, depth + 1) for v in value)
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return sum(_tensor_bytes(v, seen, depth + 1) for v in vars(value).values())
    return 0
