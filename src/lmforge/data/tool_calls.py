"""The one tool-call normaliser: every spelling of an assistant's tool calls → ``[{name, arguments}]``.

Data files (LLaMA-Factory's ``function_call`` text, OpenAI's ``tool_calls``), the templates and the
API all read calls through ``normalize_tool_calls``, so a call that one of them accepts the others
render, and a malformed one is refused the same way everywhere: the converter drops and counts the
record, the API answers 400, instead of a traceback at tokenization or a 500 at generation.
``arguments`` must be a JSON object (or JSON text of one), as OpenAI and every tool format expect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lmforge.errors import LmforgeError

HINT = 'a tool call is {"name": "...", "arguments": {...}} (or OpenAI\'s {"function": {...}}), arguments a JSON object'


class ToolCallError(LmforgeError):
    """A malformed tool call; ``reason`` is the kind of mistake without the value (drops are counted by it)."""

    def __init__(self, reason: str, value: Any, detail: str = "") -> None:
        super().__init__(f"{reason}{f' ({detail})' if detail else ''}: {_show(value)}", HINT)
        self.reason = reason


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """Arguments as an object: a dict, JSON text of one, or nothing (``{}``)."""
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as err:
            raise ToolCallError("tool call arguments are not valid JSON", arguments, err.msg) from None
    if not isinstance(arguments, Mapping):
        raise ToolCallError("tool call arguments are not a JSON object", arguments)
    return dict(arguments)


def normalize_tool_calls(calls: Any) -> list[dict[str, Any]]:
    """``[{"name": str, "arguments": dict}]`` from JSON text, one call, or a list of calls; [] for none."""
    if calls is None or (isinstance(calls, str) and not calls.strip()):
        return []
    if isinstance(calls, str):
        try:
            calls = json.loads(calls)
        except json.JSONDecodeError as err:
            raise ToolCallError("tool call is not valid JSON", calls, err.msg) from None
    calls = [calls] if isinstance(calls, Mapping) else calls
    if not isinstance(calls, list):
        raise ToolCallError("tool calls are not an object or a list of objects", calls)
    out = []
    for call in calls:
        function = call.get("function", call) if isinstance(call, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ToolCallError("tool call has no function name", call)
        out.append({"name": name, "arguments": parse_arguments(function.get("arguments"))})
    return out


def tool_calls_text(calls: Any) -> str | None:
    """The record's ``tool_calls`` field: normalised calls as JSON text (None when there are none)."""
    normalised = normalize_tool_calls(calls)
    return json.dumps(normalised, ensure_ascii=False) if normalised else None


def _show(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return repr(text if len(text) <= limit else text[:limit] + "…")
