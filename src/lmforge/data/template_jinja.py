"""A Jinja chat template equivalent to a named template.

lmforge saves it as the tokenizer's ``chat_template`` with every output, so a served model (vLLM,
llama.cpp, transformers) renders exactly what training rendered. The generated template writes
every literal through ``{{ "..." }}`` expressions: transformers' Jinja environment uses
``trim_blocks``/``lstrip_blocks``, which would eat newlines written as raw template text.
Tool calls must arrive as objects (``{"name", "arguments": {...}}`` or OpenAI's
``{"function": {...}}``), as ``apply_chat_template`` passes them.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lmforge.data.templates import Template
    from lmforge.data.tool_formats import ToolFormat

_PLACEHOLDER = re.compile(
    r"\{\{(content|bos_token|eos_token|tool|tool_text|tool_names|call|name|description|args|type|required|enum"
    r"|items|arguments)\}\}"
)
_VARIABLES = {"bos_token": "(bos_token or '')", "eos_token": "(eos_token or '')"}


def _lit(text: str) -> str:
    # JSON string syntax is a valid Jinja string literal (\n, \", \\ and \uXXXX are decoded).
    return json.dumps(text, ensure_ascii=False)


def expr(fmt: str, **values: str) -> str:
    """A format string as one Jinja expression; ``values`` name the Jinja variable per placeholder."""
    parts = []
    for i, piece in enumerate(_PLACEHOLDER.split(fmt)):
        if i % 2 == 0:
            if piece:
                parts.append(_lit(piece))
        else:
            parts.append(values.get(piece) or _VARIABLES.get(piece) or _lit("{{" + piece + "}}"))
    return " + ".join(parts) or "''"


def _described_tool(tf: ToolFormat) -> list[str]:
    """Mirror of ``ToolFormat._tool_text`` for formats that describe tools in words (default)."""
    arg = expr(
        tf.arg_item or "",
        name="(arg | string)", type="((p.type if p.type is defined else '') | string)", required="req",
        description="((p.description if p.description is defined else '') | string)", enum="enum", items="items",
    )  # fmt: skip
    item = expr(
        tf.tool_item,
        name="(f.name | string)", description="((f.description if f.description is defined else '') | string)",
        args="a.text",
    )  # fmt: skip
    return [
        "{%- set f = tool.function if tool.type == 'function' and tool.function is mapping else tool -%}",
        "{%- set params = f.parameters if f.parameters is mapping else {} -%}",
        "{%- set props = params.properties if params.properties is mapping else {} -%}",
        "{%- set required = params.required if params.required else [] -%}",
        "{%- set a = namespace(text='') -%}",
        "{%- for arg, p in props.items() -%}",
        "{%- set p = p if p is mapping else {} -%}",
        "{%- set req = ', required' if arg in required else '' -%}",
        "{%- set enum = (', should be one of [' + (p.enum | join(', ')) + ']') if p.enum else '' -%}",
        "{%- set it = p['items'] if 'items' in p else none -%}",  # p.items would be dict.items
        "{%- set it_type = (it.type if it is mapping and it.type is defined else '') | string -%}",
        "{%- set items = (', where each item should be ' + it_type) if it else '' -%}",
        "{%- set a.text = a.text + " + arg + " -%}",
        "{%- endfor -%}",
        "{%- set ns.tools = ns.tools + " + item + " -%}",
        "{%- set ns.names = ns.names + [(f.name if f.name is defined else '') | string] -%}",
    ]


def _tools_block(template: Template) -> list[str]:
    tf = template.tool_format
    if tf is None:
        return []
    if "{{tool}}" in tf.tool_item:
        item = expr(tf.tool_item, tool="(t | tojson)")
        per_tool = [
            "{%- set t = tool if tool.type is defined else {'type': 'function', 'function': tool} -%}",
            "{%- set ns.tools = ns.tools + " + item + " -%}",
            "{%- set f = tool.function if tool.type == 'function' and tool.function is mapping else tool -%}",
            "{%- set ns.names = ns.names + [(f.name if f.name is defined else '') | string] -%}",
        ]
    else:
        per_tool = _described_tool(tf)
    block = expr(tf.tools_prompt, tool_text="ns.tools", tool_names="(ns.names | join(', '))")
    return [
        "{%- if tools -%}",
        "{%- set ns = namespace(tools='', names=[]) -%}",
        "{%- for tool in tools -%}",
        *per_tool,
        "{%- endfor -%}",
        "{%- set block = " + block + " -%}",
        "{%- set system = (system + '\\n\\n' + block) if system else block -%}",
        "{%- endif -%}",
    ]


def _assistant_content(template: Template) -> list[str]:
    lines = ["{%- set turn.content = message['content'] or '' -%}"]
    tf = template.tool_format
    if tf is not None:
        call = expr(
            tf.call, call="({'name': f.name, 'arguments': f.arguments} | tojson)",
            name="(f.name | string)", arguments="(f.arguments | tojson)",
        )  # fmt: skip
        lines += [
            "{%- if message.tool_calls is defined and message.tool_calls -%}",
            "{%- for c in message.tool_calls -%}",
            "{%- set f = c.function if c.function is defined else c -%}",
            "{%- set sep = ('\\n' if turn.content else '') if loop.first else " + _lit(tf.call_separator) + " -%}",
            "{%- set turn.content = turn.content + sep + " + call + " -%}",
            "{%- endfor -%}",
            "{%- endif -%}",
        ]
    return lines


def named_template_jinja(template: Template) -> str:
    """Mirror of ``Template.render_segments``; parity is tested for every built-in template."""
    header = expr(template.assistant_header)
    system_fmt = expr(template.system, content="system")
    lines = [
        "{%- if messages and messages[0]['role'] == 'system' -%}",
        "{%- set system = messages[0]['content'] or '' -%}{%- set loop_messages = messages[1:] -%}",
        "{%- else -%}",
        "{%- set system = '' -%}{%- set loop_messages = messages -%}",
        "{%- endif -%}",
        "{%- if not system -%}{%- set system = " + _lit(template.default_system or "") + " -%}{%- endif -%}",
        *_tools_block(template),
        "{%- set turn = namespace(system='', content='') -%}",
        "{{- " + expr(template.prefix) + " -}}",
        "{%- if system -%}",
        ("{%- set turn.system = " + system_fmt + " -%}") if template.system_in_user else ("{{- " + system_fmt + " -}}"),
        "{%- endif -%}",
        "{%- for message in loop_messages -%}",
        "{%- if message['role'] == 'user' -%}",
        "{{- " + expr(template.user, content="(turn.system + (message['content'] or ''))") + " -}}",
        "{%- set turn.system = '' -%}",
        "{%- elif message['role'] == 'assistant' -%}",
        *_assistant_content(template),
        "{{- " + header + " + " + expr(template.assistant, content="turn.content") + " -}}",
        "{%- elif message['role'] == 'tool' or message['role'] == 'observation' -%}",
        "{{- " + expr(template.observation or template.user, content="(message['content'] or '')") + " -}}",
        "{%- endif -%}",
        "{%- endfor -%}",
        "{%- if add_generation_prompt -%}{{- " + header + " -}}{%- endif -%}",
    ]
    return "\n".join(lines)
