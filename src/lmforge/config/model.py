"""Model group: which weights to load, how, and with which adapters."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_name_or_path: str = Field(
        "smollm2-135m-instruct",
        description="Hugging Face model directory, a .gguf file, or a built-in alias "
        "(smollm2-135m-instruct).",
    )
    adapter_name_or_path: list[str] | None = Field(
        None, description="LoRA adapter directories to load on top of the model (comma-separated)."
    )
    trust_remote_code: bool = Field(
        False, description="Run model code shipped with the weights. Off: only enable for sources you trust."
    )
    flash_attn: Literal["auto", "disabled", "sdpa", "fa2", "fa3"] = Field(
        "auto", description="Attention kernel: auto (SDPA), disabled (eager), sdpa, fa2, fa3."
    )
    enable_liger_kernel: bool = Field(
        False, description="Use Liger fused kernels (CUDA only; ignored with a warning on CPU)."
    )
    infer_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="dtype for inference commands; auto = bf16 on capable GPUs, fp32 on CPU."
    )
    infer_backend: Literal["hf", "vllm"] = Field(
        "hf", description="Inference engine: hf (transformers, batched) or vllm (GPU, if installed)."
    )
    model_revision: str = Field("main", description="Revision of a hub model (branch, tag or commit).")
    cache_dir: str | None = Field(None, description="Where downloaded hub models are cached.")
