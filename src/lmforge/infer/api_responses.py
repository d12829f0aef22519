"""OpenAI response shapes: completions, stream chunks, usage, tool calls and errors."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from lmforge.infer.params import Completion


class ApiError(Exception):
    """An error answered as ``{"error": {message, type, param, code}}`` with an HTTP status."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None, code=None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def tool_call_objects(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Template-parsed calls ({name, arguments}) as OpenAI ``tool_calls`` (arguments as JSON text)."""
    out = []
    for index, call in enumerate(calls):
        arguments = call.get("arguments", {})
        out.append(
            {
                "index": index,
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False),
                },
            }
        )
    return out


def chat_message(text: str, calls: list[dict[str, Any]] | None) -> tuple[dict[str, Any], str | None]:
    """The assistant message, and ``tool_calls`` as finish reason when the answer is tool calls."""
    if calls:
        return {"role": "assistant", "content": None, "tool_calls": tool_call_objects(calls)}, "tool_calls"
    return {"role": "assistant", "content": text}, None


def chat_completion(rid: str, model: str, choices: list[dict[str, Any]], prompt_tokens: int, done: list[Completion]):
    return {
        "id": rid,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": choices,
        "usage": usage(prompt_tokens, sum(c.completion_tokens for c in done)),
    }


def now() -> int:
    return int(time.time())


def chunk(rid: str, obj: str, model: str, choices: list[dict[str, Any]], **fields: Any) -> str:
    """One server-sent event (``data: {...}``) of a streamed response; ``fields`` such as usage."""
    body: dict[str, Any] = {"id": rid, "object": obj, "created": now(), "model": model, "choices": choices}
    body.update(fields)
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def error_event(message: str) -> str:
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return f"data: {json.dumps(body)}\n\n"


DONE = "data: [DONE]\n\n"
