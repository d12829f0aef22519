"""What one generation request asks for and what it gets back: plain values shared by every engine,
so chat, the API and evaluation speak one vocabulary whatever backend runs the model."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from lmforge.config.generate import GenerateConfig


@dataclass(frozen=True)
class SamplingParams:
    """Per-request decoding settings; defaults come from the config's generate group."""

    max_new_tokens: int = 1024
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0  # OpenAI's, over the answer so far (sampling.py)
    frequency_penalty: float = 0.0
    num_beams: int = 1
    length_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    skip_special_tokens: bool = True
    logprobs: int | None = None  # None: off; k: each token's log probability and the k likeliest

    @classmethod
    def from_config(cls, gen: GenerateConfig) -> SamplingParams:
        return cls(
            max_new_tokens=gen.max_new_tokens,
            do_sample=gen.do_sample,
            temperature=gen.temperature,
            top_p=gen.top_p,
            top_k=gen.top_k,
            repetition_penalty=gen.repetition_penalty,
            num_beams=gen.num_beams,
            length_penalty=gen.length_penalty,
            skip_special_tokens=gen.skip_special_tokens,
        )

    @property
    def greedy(self) -> bool:
        """Temperature 0 means greedy, as in the OpenAI API."""
        return not self.do_sample or self.temperature <= 0

    @property
    def penalised(self) -> bool:
        """Any penalty that changes the logits (the vectorised greedy path skips them)."""
        return self.repetition_penalty != 1.0 or self.presence_penalty != 0 or self.frequency_penalty != 0

    def updated(self, **changes: Any) -> SamplingParams:
        """A copy with the given fields replaced; ``None`` values keep the current setting."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass
class TokenLogprob:
    """A generated token's log probability under the model (its raw distribution, before
    penalties and temperature, as vLLM reports by default) and the likeliest tokens at that step,
    as ``(token id, log probability)`` pairs, most likely first."""

    token_id: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class GenerationEvent:
    """One streamed piece of an answer. The last event of a request has ``finish_reason`` set:
    ``stop`` (end of turn or stop word), ``length``, ``cancelled`` or ``error``."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)  # tokens since the last event


@dataclass
class Completion:
    """A whole answer, as ``Engine.generate`` returns it."""

    text: str
    token_ids: list[int]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[TokenLogprob] = field(default_factory=list)  # when asked for
