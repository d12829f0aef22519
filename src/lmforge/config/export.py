"""Export group: merging adapters into a standalone model directory."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    export_dir: str | None = Field(None, description="Where lmforge export writes the merged model.")
    export_size: int = Field(5, gt=0, description="Largest safetensors shard, in GB.")
    export_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="dtype of exported weights; auto keeps the loaded dtype."
    )
