"""Chat templates: how a canonical conversation becomes text, then token ids.

The definitions are data (``templates.yaml``, formats as in LLaMA-Factory); this module renders
them. Every conversation is rendered as *segments* — one prompt and one response per assistant
turn — and encoded with ``add_special_tokens=False``: special tokens such as bos appear only
where a format writes ``{{bos_token}}``, so training and serving see the same ids.

Decisions that callers rely on (docs/templates.md):
- The end-of-turn suffix (``<|im_end|>\\n`` for chatml) belongs to the response and is trained:
  the model must learn to emit the end-of-turn token, and the newline after it keeps the
  concatenated pairs identical to the whole rendered conversation.
- Training samples and generation prompts are both encoded as whole texts, as
  ``apply_chat_template`` does with the template from ``chat_template_jinja``; training samples
  are then cut into turns by character offsets. The doctor checks that the prompt inside a
  sample equals the prompt encoded alone (a token merging across the assistant header breaks it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lmforge.data.template_encoding import encode, encode_pairs, encode_pairs_batch
from lmforge.data.tool_calls import normalize_tool_calls
from lmforge.data.tool_formats import ToolFormat
from lmforge.errors import LmforgeError

TEMPLATES_FILE = Path(__file__).with_name("templates.yaml")
_TEMPLATE_KEYS = {
    "prefix", "system", "system_in_user", "user", "observation", "assistant_header", "assistant",
    "eot", "stop_words", "default_system", "tool_format",
}  # fmt: skip
_TOOL_KEYS = {"tools_prompt", "tool_item", "call", "call_separator", "arg_item"}
DEFAULT_TOOL_FORMAT = "default"  # LLaMA-Factory's: templates without a native tool format use it

Message = Mapping[str, Any]


def fill(fmt: str, tokenizer: Any, content: str = "") -> str:
    """Substitute the placeholders of one format string."""
    text = fmt.replace("{{content}}", content)
    if "{{bos_token}}" in text:
        text = text.replace("{{bos_token}}", tokenizer.bos_token or "")
    if "{{eos_token}}" in text:
        text = text.replace("{{eos_token}}", tokenizer.eos_token or "")
    return text


@dataclass(frozen=True)
class Template:
    """One named chat format. Immutable: a run that changes ``default_system`` gets a copy."""

    name: str
    user: str
    assistant: str
    assistant_header: str = ""
    system: str = "{{content}}"
    system_in_user: bool = False
    observation: str | None = None
    prefix: str = ""
    eot: str | None = None
    stop_words: list[str] = field(default_factory=list)
    default_system: str | None = None
    tool_format: ToolFormat | None = None

    # --- what the template knows -------------------------------------------------------------
    @property
    def end_of_turn(self) -> str:
        """The end-of-turn marker as a format (may be ``{{eos_token}}``)."""
        return self.eot or (self.stop_words[0] if self.stop_words else "{{eos_token}}")

    def eot_token_ids(self, tokenizer: Any) -> list[int]:
        return encode(tokenizer, fill(self.end_of_turn, tokenizer))

    def turn_suffix(self, tokenizer: Any) -> str:
        """Text that follows the answer in every assistant turn (``<|im_end|>\\n`` for chatml)."""
        return fill(self.assistant.split("{{content}}", 1)[1], tokenizer)

    def stop_token_strings(self, tokenizer: Any) -> list[str]:
        """Stop words with placeholders filled; the eos token when the template names none."""
        words = self.stop_words or [self.end_of_turn]
        return [fill(w, tokenizer) for w in words]

    @property
    def supports_tools(self) -> bool:
        return self.tool_format is not None

    def with_default_system(self, system: str | None) -> Template:
        return self if system is None else dataclasses.replace(self, default_system=system)

    # --- tools ---------------------------------------------------------------------------------
    def format_tools(self, tools: str | list[Mapping[str, Any]]) -> str:
        """The system-prompt text that announces ``tools`` (JSON text or a list of schemas)."""
        return self._tool_format().render_tools(parse_tools(tools))

    def parse_tool_calls(self, text: str) -> list[dict[str, Any]] | None:
        return self._tool_format().parse_calls(text)

    def _tool_format(self) -> ToolFormat:
        if self.tool_format is None:
            raise LmforgeError(
                f"template {self.name} has no tool format (tool_format: null), so it cannot render tools",
                hint="remove tool_format: null to use the default format, or name one (qwen, default)",
            )
        return self.tool_format

    # --- rendering -----------------------------------------------------------------------------
    def render_segments(
        self, tokenizer: Any, messages: list[Message], system: str | None = None, tools: Any = None
    ) -> tuple[list[tuple[str, str]], str]:
        """(prompt, response) texts per assistant turn, plus the text after the last answer."""
        system, messages = split_system(messages, system)
        system = system or self.default_system or ""
        tool_list = parse_tools(tools)
        if tool_list:
            block = self._tool_format().render_tools(tool_list)
            system = f"{system}\n\n{block}" if system else block
        system_text = fill(self.system, tokenizer, system) if system else ""
        prompt = fill(self.prefix, tokenizer)
        if system_text and not self.system_in_user:
            prompt += system_text
            system_text = ""
        pairs: list[tuple[str, str]] = []
        for message in messages:
            role, content = message["role"], message.get("content") or ""
            if role == "assistant":
                calls = parse_tool_calls_field(message.get("tool_calls"))
                if calls:
                    rendered = self._tool_format().render_calls(calls)
                    content = f"{content}\n{rendered}" if content else rendered
                prompt += fill(self.assistant_header, tokenizer)
                pairs.append((prompt, fill(self.assistant, tokenizer, content)))
                prompt = ""
            elif role == "user":
                if system_text:
                    content, system_text = system_text + content, ""
                prompt += fill(self.user, tokenizer, content)
            elif role in ("tool", "observation"):
                prompt += fill(self.observation or self.user, tokenizer, content)
            else:
                raise LmforgeError(f"unknown message role {role!r}", hint="roles are user, assistant, tool")
        return pairs, prompt

    def encode_turns(
        self, tokenizer: Any, messages: list[Message], system: str | None = None, tools: Any = None
    ) -> list[tuple[list[int], list[int]]]:
        """One (prompt_ids, response_ids) per assistant turn; their concatenation is the sample."""
        pairs, rest = self.render_segments(tokenizer, messages, system, tools)
        if rest:
            raise LmforgeError(
                "a training conversation must end with an assistant message",
                hint="drop trailing user/tool messages from the record",
            )
        return encode_pairs(tokenizer, pairs)

    def encode_turns_batch(
        self, tokenizer: Any, conversations: list[tuple[list[Message], str | None, Any]]
    ) -> list[list[tuple[list[int], list[int]]]]:
        """``encode_turns`` for many ``(messages, system, tools)`` at once (one tokenizer call)."""
        rendered = []
        for messages, system, tools in conversations:
            pairs, rest = self.render_segments(tokenizer, messages, system, tools)
            if rest:
                raise LmforgeError(
                    "a training conversation must end with an assistant message",
                    hint="drop trailing user/tool messages from the record",
                )
            rendered.append(pairs)
        return encode_pairs_batch(tokenizer, rendered)

    def encode_prompt(
        self, tokenizer: Any, messages: list[Message], system: str | None = None, tools: Any = None
    ) -> list[int]:
        """The generation prompt: the conversation so far, ending with the assistant header."""
        pairs, rest = self.render_segments(tokenizer, messages, system, tools)
        text = "".join(p + r for p, r in pairs) + rest + fill(self.assistant_header, tokenizer)
        return encode(tokenizer, text)

    def chat_template_jinja(self, tokenizer: Any) -> str:
        from lmforge.data.template_jinja import named_template_jinja

        return named_template_jinja(self)


# --- message helpers ---------------------------------------------------------------------------
def split_system(messages: list[Message], system: str | None) -> tuple[str | None, list[Message]]:
    """Accept a leading system message (chat/api requests) as well as the record's ``system``."""
    if messages and messages[0].get("role") == "system":
        return system or messages[0].get("content"), list(messages[1:])
    return system, list(messages)


def to_chat_messages(messages: list[Message], system: str | None = None) -> list[dict[str, Any]]:
    """Canonical messages as ``apply_chat_template`` takes them (tool calls as objects)."""
    system, messages = split_system(messages, system)
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in messages:
        item: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
        calls = parse_tool_calls_field(m.get("tool_calls"))
        if calls:
            item["tool_calls"] = [{"type": "function", "function": c} for c in calls]
        out.append(item)
    return out


def parse_tools(tools: Any) -> list[Mapping[str, Any]]:
    if not tools:
        return []
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as err:
            raise LmforgeError(f"tools is not valid JSON: {err}", hint="tools is a JSON list of schemas") from None
    if isinstance(tools, Mapping):
        tools = [tools]
    return list(tools)


def parse_tool_calls_field(calls: Any) -> list[dict[str, Any]]:
    """Canonical ``tool_calls`` (JSON text) or OpenAI-style dicts → [{name, arguments}] (tool_calls.py)."""
    return normalize_tool_calls(calls)


# --- registry ----------------------------------------------------------------------------------
def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise LmforgeError(f"cannot read template file {path}: {err}") from None
    except yaml.YAMLError as err:
        raise LmforgeError(f"template file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise LmforgeError(f"template file {path} must hold a mapping", hint="see docs/templates.md")
    return data


def _tool_formats(raw: Mapping[str, Any], path: Path) -> dict[str, ToolFormat]:
    formats = {}
    for name, spec in (raw or {}).items():
        unknown = set(spec) - _TOOL_KEYS
        if unknown:
            raise LmforgeError(f"{path}: tool format {name} has unknown keys {sorted(unknown)}")
        formats[name] = ToolFormat(name=name, **spec)
    return formats


def _build(name: str, spec: Mapping[str, Any], tool_formats: Mapping[str, ToolFormat], path: Path) -> Template:
    where = f"{path}: template {name}"
    if not isinstance(spec, Mapping):
        raise LmforgeError(f"{where} must be a mapping of formats")
    unknown = set(spec) - _TEMPLATE_KEYS
    if unknown:
        raise LmforgeError(f"{where} has unknown keys {sorted(unknown)}", hint=f"known: {sorted(_TEMPLATE_KEYS)}")
    for key in ("user", "assistant"):
        if "{{content}}" not in str(spec.get(key, "")):
            raise LmforgeError(f"{where}: `{key}` must be a format containing {{{{content}}}}")
    values = dict(spec)
    # Absent: LLaMA-Factory's default format (tools in the system prompt, Action lines); null: no tools.
    tool_name = values.pop("tool_format", DEFAULT_TOOL_FORMAT)
    if tool_name is not None and tool_name not in tool_formats:
        raise LmforgeError(f"{where}: unknown tool_format {tool_name}", hint=f"known: {sorted(tool_formats)}")
    values["stop_words"] = list(values.get("stop_words") or [])
    return Template(name=name, tool_format=tool_formats.get(tool_name) if tool_name else None, **values)


@cache
def _builtin() -> tuple[Mapping[str, Template], Mapping[str, ToolFormat]]:
    data = _read_yaml(TEMPLATES_FILE)
    tools = _tool_formats(data.get("tool_formats", {}), TEMPLATES_FILE)
    templates = {n: _build(n, s, tools, TEMPLATES_FILE) for n, s in data["templates"].items()}
    return MappingProxyType(templates), MappingProxyType(tools)


def template_names() -> list[str]:
    """Every name ``get_template`` accepts besides a file path."""
    return [*_builtin()[0], "auto"]


def builtin_templates() -> Mapping[str, Template]:
    return _builtin()[0]


def load_template_file(path: str | Path) -> Template:
    """A custom template from a YAML file: one entry under ``templates:`` or a bare definition."""
    path = Path(path)
    data = _read_yaml(path)
    tools = {**_builtin()[1], **_tool_formats(data.get("tool_formats", {}), path)}
    if "templates" in data:
        entries = data["templates"] or {}
        if len(entries) != 1:
            raise LmforgeError(f"{path} must define exactly one template, found {len(entries)}")
        ((name, spec),) = entries.items()
        return _build(str(name), spec, tools, path)
    return _build(path.stem, {k: v for k, v in data.items() if k != "tool_formats"}, tools, path)


def get_template(name: str, tokenizer: Any, default_system: str | None = None) -> Template:
    """The template a config names: a built-in name, ``auto`` (the tokenizer's own), or a YAML path.

    ``default_system`` (``data.default_system``) replaces the template's own default prompt.
    """
    if name == "auto":
        from lmforge.data.template_auto import TokenizerTemplate

        template: Template = TokenizerTemplate.from_tokenizer(tokenizer)
    elif name in builtin_templates():
        template = builtin_templates()[name]
    elif name.endswith((".yaml", ".yml")) or Path(name).is_file():
        template = load_template_file(name)
    else:
        raise LmforgeError(
            f"unknown template {name!r}",
            hint=f"template is one of {', '.join(template_names())}, or a path to a template .yaml",
        )
    return template.with_default_system(default_system)
