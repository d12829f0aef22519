"""Model group: which weights to load, how, and with which adapters."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_name_or_path: str = Field(
        "smollm2-135m-instruct",
        description="Hugging Face model directory, a .gguf file, or a built-in alias (smollm2-135m-instruct).",
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
    quantization_bit: Literal[4, 8] | None = Field(
        None, description="QLoRA: load the base weights in 4 or 8 bits (bitsandbytes) and train LoRA on top."
    )
    quantization_method: Literal["bnb", "gptq", "awq", "aqlm", "quanto", "eetq", "hqq", "mxfp4", "fp8"] = Field(
        "bnb", description="Quantizer for quantization_bit; only bnb (bitsandbytes) is supported so far."
    )
    quantization_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type: nf4 (QLoRA's) or fp4.")
    double_quantization: bool = Field(
        True, description="4-bit: quantize the quantization constants too (~0.4 bit/weight less)."
    )
    upcast_layernorm: bool = Field(
        False, description="Keep normalization weights in float32 when the rest is bf16/fp16 (stabler training)."
    )
