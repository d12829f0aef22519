"""Generate group: decoding settings for chat, the API server and evaluation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GenerateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    do_sample: bool = Field(True, description="Sample; false = greedy decoding.")
    temperature: float = Field(0.95, ge=0, description="Sampling temperature.")
    top_p: float = Field(0.7, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int = Field(50, ge=0, description="Sample among the k most likely tokens (0 = off).")
    num_beams: int = Field(1, gt=0, description="Beam search width (1 = no beam search).")
    max_new_tokens: int = Field(1024, gt=0, description="Most tokens generated per answer.")
    repetition_penalty: float = Field(1.0, gt=0, description="Penalty > 1 discourages repeats.")
    length_penalty: float = Field(1.0, description="Beam search length penalty exponent.")
    skip_special_tokens: bool = Field(True, description="Drop special tokens from decoded text.")
