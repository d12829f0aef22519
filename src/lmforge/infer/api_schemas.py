"""Request bodies of the OpenAI-compatible API and the server's settings.

Ranges follow OpenAI's documented limits, so a bad value is a 400 naming the parameter, never a
500 from deep inside generation. Unknown fields are ignored, as OpenAI clients send extras; the
OpenAI parameters that change an answer and that lmforge does not implement are declared here and
listed by ``unsupported()``: accepted at their neutral values (clients send ``logprobs: false``),
refused otherwise, so none is silently dropped.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lmforge.errors import LmforgeError


class ApiSettings(BaseModel):
    """Where and how the server listens; each field also reads an environment variable."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: str | None = None
    max_concurrent: int = Field(64, ge=1, description="requests queued or running before 503")
    max_batch_size: int = Field(16, ge=1, description="rows decoded together")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> ApiSettings:
        """``API_HOST``, ``API_PORT``, ``API_KEY``, ``MAX_CONCURRENT``, ``MAX_BATCH_SIZE``; explicit
        (non-None) overrides such as command-line flags win."""
        env = dict(os.environ if env is None else env)
        names = {
            "host": "API_HOST",
            "port": "API_PORT",
            "api_key": "API_KEY",
            "max_concurrent": "MAX_CONCURRENT",
            "max_batch_size": "MAX_BATCH_SIZE",
        }
        values: dict[str, Any] = {field: env[var] for field, var in names.items() if env.get(var)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValueError as err:
            raise LmforgeError(f"invalid API setting: {err}", "check API_PORT / MAX_CONCURRENT") from None


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Request):
    type: str
    text: str | None = None


class ToolCallFunction(_Request):
    name: str
    arguments: str | dict[str, Any] = "{}"

    @field_validator("arguments")
    @classmethod
    def _json_object(cls, value: str | dict[str, Any]) -> dict[str, Any]:
        """Arguments that are not a JSON object are a 400 here, not a 500 at prompt building."""
        from lmforge.data.tool_calls import parse_arguments

        try:
            return parse_arguments(value)
        except LmforgeError as err:
            raise ValueError(err.message) from None


class ToolCall(_Request):
    id: str | None = None
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""

    def canonical(self) -> dict[str, Any]:
        """The record-format message (see docs/architecture.md): tool calls as JSON text."""
        message: dict[str, Any] = {"role": self.role, "content": self.text()}
        if self.tool_calls:
            from lmforge.data.tool_calls import tool_calls_text

            message["tool_calls"] = tool_calls_text([c.function.model_dump() for c in self.tool_calls])
        return message


class FunctionSpec(_Request):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolSpec(_Request):
    type: Literal["function"] = "function"
    function: FunctionSpec


class StreamOptions(_Request):
    include_usage: bool = False


class _Sampling(_Request):
    """Settings shared by chat and text completions; None = the config's generate defaults."""

    model: str
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, gt=0)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None  # unsupported: refused unless empty
    n: int = Field(1, ge=1, le=16)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def stop_words(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def unsupported(self) -> list[tuple[str, str]]:
        """(parameter, message) for each unsupported parameter set to a non-neutral value."""
        if self.logit_bias:
            return [("logit_bias", "logit_bias is not supported by this server; leave it out")]
        return []

    def logprobs_wanted(self) -> int | None:
        """None: no log probabilities; k: each token's and the k likeliest alternatives."""
        return None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[ToolSpec] | None = None
    tool_choice: str | dict[str, Any] | None = None  # "auto" (default) or "none"
    response_format: dict[str, Any] | None = None  # only {"type": "text"}
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)  # needs logprobs: true

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def tools_enabled(self) -> bool:
        """``tool_choice: "none"`` keeps the tools out of the prompt and the answer unparsed."""
        return bool(self.tools) and self.tool_choice != "none"

    def logprobs_wanted(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None

    def unsupported(self) -> list[tuple[str, str]]:
        refused = super().unsupported()
        if self.top_logprobs and not self.logprobs:
            refused.append(("top_logprobs", "top_logprobs needs logprobs: true; add it, or leave top_logprobs out"))
        kind = (self.response_format or {}).get("type", "text")
        if kind != "text":
            refused.append((
                "response_format",
                f"response_format type {kind!r} is not supported (no constrained decoding); "
                'use {"type": "text"} and ask for JSON in the prompt',
            ))  # fmt: skip
        if self.tool_choice not in (None, "auto", "none"):
            refused.append((
                "tool_choice",
                f"tool_choice {json.dumps(self.tool_choice)} is not supported (the model is not forced to call "
                'a tool); use "auto" or "none"',
            ))  # fmt: skip
        return refused


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    echo: bool = False  # the prompt is sent back before the answer
    logprobs: int | None = Field(None, ge=0, le=5)  # the chosen token's and this many alternatives
    best_of: int | None = Field(None, ge=1)  # unsupported: only 1
    suffix: str | None = None  # unsupported: only empty

    def token_limit(self) -> int | None:
        return self.max_tokens

    def logprobs_wanted(self) -> int | None:
        return self.logprobs

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def unsupported(self) -> list[tuple[str, str]]:
        refused = super().unsupported()
        if self.logprobs is not None and self.echo:
            refused.append((
                "logprobs",
                "logprobs with echo: true needs the prompt's log probabilities, which this server does not "
                "compute; drop echo or logprobs",
            ))  # fmt: skip
        if self.best_of not in (None, 1):
            refused.append(("best_of", "best_of is not supported by this server; use n for several answers"))
        if self.suffix:
            refused.append(("suffix", "suffix (fill-in-the-middle) is not supported by this server; leave it out"))
        return refused
