"""Export group: merging adapters into a standalone model directory, or a GGUF file for llama.cpp
and Ollama (docs/export.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lmforge.export.sizes import size_to_bytes

GGUF_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_k_m")


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    export_dir: str | None = Field(None, description="Where lmforge export writes the merged model.")
    export_size: int | float | str = Field(
        5, description="Largest safetensors shard: a number of GB (5, 0.5) or a size string (200MB, 2GiB)."
    )
    export_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="dtype of exported weights; auto keeps the dtype the base model is stored in."
    )
    export_device: Literal["cpu", "auto"] = Field(
        "cpu", description="Where adapters merge: cpu (as LLaMA-Factory, no GPU memory) or auto (the best device)."
    )
    export_format: Literal["safetensors", "gguf"] = Field(
        "safetensors", description="safetensors: a transformers model folder; gguf: one file for llama.cpp and Ollama."
    )
    export_gguf_type: Literal[GGUF_TYPES] = Field(  # type: ignore[valid-type]
        "f32",
        description="GGUF weight type: f32 (matches transformers exactly), f16, bf16, q8_0, or q4_k_m "
        "(needs llama-cpp-python, whose quantizer writes it).",
    )

    @field_validator("export_size")
    @classmethod
    def _size_parses(cls, value: int | float | str) -> int | float | str:
        size_to_bytes(value)  # ValueError names the value and the accepted forms
        return value

    @property
    def shard_bytes(self) -> int:
        return size_to_bytes(self.export_size)
