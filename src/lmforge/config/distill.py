"""Distill group: the keys of ``stage: distill`` (a teacher model distilled into the trained one).

The loss compares the student's and the teacher's next-token distributions at the trained positions
of SFT data (off-policy), or on the student's own answers (``distill_on_policy``); docs/stages.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DistillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teacher_model: str | None = Field(
        None, description="distill: the teacher (path, .gguf or alias); it must use the student's tokenizer."
    )
    teacher_model_adapters: list[str] | None = Field(
        None, description="distill: LoRA adapters merged into teacher_model (comma-separated)."
    )
    distill_loss: Literal["forward_kl", "reverse_kl", "jsd"] = Field(
        "forward_kl",
        description="distill: forward_kl (KL(teacher || student), mode-covering), reverse_kl (KL(student || "
        "teacher), mode-seeking) or jsd (generalized Jensen-Shannon with distill_beta).",
    )
    distill_beta: float = Field(
        0.5, ge=0, le=1, description="distill jsd: the mixture weight beta (0 = forward KL, 1 = reverse KL)."
    )
    distill_temperature: float = Field(
        1.0, gt=0, description="distill: softmax temperature of both distributions (the loss is scaled by T^2)."
    )
    distill_on_policy: bool = Field(
        False,
        description="distill: train on the student's own sampled answers to the prompts (up to "
        "max_completion_length tokens) instead of the data's answers (GKD with lambda = 1).",
    )
