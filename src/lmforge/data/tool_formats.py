"""Tool formats: how tool schemas enter the system prompt, how calls are written, and read back.

Two kinds, both plain data in ``templates.yaml``:

- **JSON calls** (qwen's): ``tool_item`` embeds each schema as JSON (``{{tool}}``) and ``call`` wraps
  one JSON object per call (``{{call}}``, e.g. ``<tool_call>{...}</tool_call>``).
- **Text fields** (LLaMA-Factory's ``default`` format, used by every template without a native
  one): ``tool_item`` describes each tool in words with one ``arg_item`` per parameter, and
  ``call`` writes ``{{name}}`` and ``{{arguments}}`` as lines (``Action: name`` /
  ``Action Input: {json}``). Reading them back follows LLaMA-Factory's extractor: whitespace is
  loose, and an answer whose calls do not parse as JSON objects is plain text, not a call.

``template_jinja`` mirrors ``render_tools`` and ``render_calls`` in Jinja; parity is tested.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_FIELD = re.compile(r"\{\{(\w+)\}\}")


def subst(fmt: str, **values: str) -> str:
    """Fill ``{{name}}`` placeholders in one pass (a value holding ``{{...}}`` is left alone)."""
    return _FIELD.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), fmt)


def function_of(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    """The function schema inside an OpenAI ``{"type": "function", "function": {...}}`` wrapper."""
    inner = tool.get("function") if tool.get("type") == "function" else None
    return inner if isinstance(inner, Mapping) else tool


@dataclass(frozen=True)
class ToolFormat:
    name: str
    tools_prompt: str
    tool_item: str
    call: str
    call_separator: str = "\n"
    arg_item: str | None = None  # text-field formats: one line per parameter (``{{args}}`` of tool_item)

    @property
    def json_calls(self) -> bool:
        return "{{call}}" in self.call

    def tool_json(self, tool: Mapping[str, Any]) -> str:
        wrapped = tool if "type" in tool else {"type": "function", "function": dict(tool)}
        return json.dumps(wrapped, ensure_ascii=False)

    def render_tools(self, tools: list[Mapping[str, Any]]) -> str:
        items = [self._tool_text(tool) for tool in tools]
        names = ", ".join(str(function_of(tool).get("name", "")) for tool in tools)
        return subst(self.tools_prompt, tool_text="".join(items), tool_names=names)

    def _tool_text(self, tool: Mapping[str, Any]) -> str:
        if "{{tool}}" in self.tool_item:
            return subst(self.tool_item, tool=self.tool_json(tool))
        fn = function_of(tool)
        return subst(
            self.tool_item,
            name=str(fn.get("name", "")),
            description=str(fn.get("description", "")),
            args="".join(self._arg_texts(fn)),
        )

    def _arg_texts(self, fn: Mapping[str, Any]) -> list[str]:
        """LLaMA-Factory's parameter lines: ``  - city (string, required): The city``."""
        params = fn.get("parameters") if isinstance(fn.get("parameters"), Mapping) else {}
        props = params.get("properties") if isinstance(params.get("properties"), Mapping) else {}
        required = params.get("required") or []
        lines = []
        for arg, param in props.items():
            param = param if isinstance(param, Mapping) else {}
            enum = f", should be one of [{', '.join(map(str, param['enum']))}]" if param.get("enum") else ""
            items = param.get("items")
            item_type = items.get("type", "") if isinstance(items, Mapping) else ""
            lines.append(
                subst(
                    self.arg_item or "",
                    name=str(arg),
                    type=str(param.get("type", "")),
                    required=", required" if arg in required else "",
                    description=str(param.get("description", "")),
                    enum=enum,
                    items=f", where each item should be {item_type}" if items else "",
                )
            )
        return lines

    def render_calls(self, calls: list[Mapping[str, Any]]) -> str:
        parts = []
        for call in calls:
            arguments = json.dumps(call["arguments"], ensure_ascii=False)
            if self.json_calls:
                body = json.dumps({"name": call["name"], "arguments": call["arguments"]}, ensure_ascii=False)
                parts.append(subst(self.call, call=body))
            else:
                parts.append(subst(self.call, name=str(call["name"]), arguments=arguments))
        return self.call_separator.join(parts)

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        """Tool calls in a generated answer, or None when it holds none (or malformed ones)."""
        return _parse_json_calls(self.call, text) if self.json_calls else _parse_field_calls(self.call, text)


def _parse_json_calls(call: str, text: str) -> list[dict[str, Any]] | None:
    before, _, after = call.partition("{{call}}")
    calls = []
    for body in re.findall(re.escape(before) + r"(.*?)" + re.escape(after), text, flags=re.DOTALL):
        try:
            obj = json.loads(body)
        except json.JSONDecodeError:
            return None
        if not isinstance(obj, dict) or "name" not in obj:
            return None
        calls.append({"name": obj["name"], "arguments": obj.get("arguments", {})})
    return calls or None


def _loose(literal: str) -> str:
    """A literal of the call format as a regex in which any run of whitespace may vary."""
    words = literal.split()
    body = r"\s*".join(re.escape(w) for w in words)
    if not words:
        return r"\s*"
    return (r"\s*" if literal[:1].isspace() else "") + body + (r"\s*" if literal[-1:].isspace() else "")


def _parse_field_calls(call: str, text: str) -> list[dict[str, Any]] | None:
    pieces = _FIELD.split(call)  # literal, field, literal, field, ..., literal
    first = next((p for p in pieces[::2] if p.strip()), "")
    end = rf"(?={_loose(first)}|\s*$)" if first else r"\s*$"
    pattern, fields = "", []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            pattern += _loose(piece) if piece else ""
        else:
            fields.append(piece)
            last = i == len(pieces) - 2 and not pieces[-1]
            pattern += r"([\w.\-]+)" if piece == "name" else (r"(.+?)" + end if last else r"(.+?)")
    calls = []
    for match in re.finditer(pattern, text, flags=re.DOTALL):
        found = dict(zip(fields, match.groups(), strict=True))
        raw = found.get("arguments", "{}").strip().strip('"').strip("`").strip()
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError:
            return None
        if not isinstance(arguments, dict):
            return None
        calls.append({"name": found.get("name", ""), "arguments": arguments})
    return calls or None
