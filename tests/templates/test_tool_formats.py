"""Tool data renders fully or is refused, on every template (issue 14, items 3, 11, 13): named
templates without a native tool format use LLaMA-Factory's default one (tools described in the system
prompt, calls as ``Action:`` / ``Action Input:`` lines) and read it back; ``template: auto`` refuses
tool data its chat template would drop; one normaliser refuses malformed calls everywhere."""

from __future__ import annotations

import json

import pytest

from lmforge.data.templates import get_template, template_names, to_chat_messages
from lmforge.data.tool_calls import normalize_tool_calls
from lmforge.errors import LmforgeError

WEATHER = {
    "name": "get_weather",
    "description": "Current weather",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["city"],
    },
}
CALL = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'
CHAT = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": CALL},
    {"role": "tool", "content": "sunny"},
    {"role": "assistant", "content": "Sunny."},
]
DEFAULT_TOOL_TEXT = (
    "You have access to the following tools:\n"
    "> Tool Name: get_weather\nTool Description: Current weather\nTool Args:\n"
    "  - city (string, required): The city\n"
    "  - unit (string): , should be one of [c, f]\n"
    "  - days (array): , where each item should be integer\n\n"
    "Use the following format if using a tool:\n```\n"
    "Action: tool name (one of [get_weather])\n"
    "Action Input: the input to the tool, in a JSON format representing the kwargs "
    '(e.g. ```{"input": "hello world", "num_beams": 5}```)\n```\n'
)


def _ids(out) -> list[int]:
    return list(out if isinstance(out, list) else out["input_ids"])


def test_chatml_renders_tools_and_calls_in_llamafactory_default_format(tokenizer):
    turns = get_template("chatml", tokenizer).encode_turns(tokenizer, CHAT, tools=json.dumps([WEATHER]))
    assert [(tokenizer.decode(p), tokenizer.decode(r)) for p, r in turns] == [
        (
            f"<|im_start|>system\n{DEFAULT_TOOL_TEXT}<|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n"
            "<|im_start|>assistant\n",
            'Action: get_weather\nAction Input: {"city": "Paris"}<|im_end|>\n',
        ),
        ("<|im_start|>tool\nsunny<|im_end|>\n<|im_start|>assistant\n", "Sunny.<|im_end|>\n"),
    ]


@pytest.mark.parametrize("name", [n for n in template_names() if n != "auto"])
@pytest.mark.parametrize("system", ["Be brief.", None])
def test_every_named_template_renders_tools_as_its_saved_jinja_does(tokenizer, name, system):
    template = get_template(name, tokenizer)
    probe = [*CHAT, {"role": "user", "content": "thanks"}]
    ids = template.encode_prompt(tokenizer, probe, system=system, tools=json.dumps([WEATHER]))
    served = tokenizer.apply_chat_template(
        to_chat_messages(probe, system), tools=[WEATHER], add_generation_prompt=True,
        chat_template=template.chat_template_jinja(tokenizer),
    )  # fmt: skip
    assert _ids(served) == ids
    text = tokenizer.decode(ids)
    assert "get_weather" in text and '"city": "Paris"' in text


def test_default_format_calls_parse_back(tokenizer):
    template = get_template("chatml", tokenizer)
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now", "arguments": {}}]
    written = template.tool_format.render_calls(calls)
    assert written == 'Action: get_weather\nAction Input: {"city": "Paris"}\nAction: now\nAction Input: {}'
    assert template.parse_tool_calls("Let me check.\n" + written) == calls
    assert template.parse_tool_calls('Action:  f\n  Action Input: ```{"a": 1}```  ') == [
        {"name": "f", "arguments": {"a": 1}}
    ]
    assert template.parse_tool_calls("Action: f\nAction Input: not json") is None
    assert template.parse_tool_calls("It is sunny.") is None


def test_auto_refuses_tool_data_its_chat_template_would_drop(tokenizer):
    auto = get_template("auto", tokenizer)  # SmolLM2's chat template ignores tools and tool_calls
    assert not auto.supports_tools
    with pytest.raises(LmforgeError) as info:
        auto.encode_turns(tokenizer, CHAT, tools=json.dumps([WEATHER]))
    assert "does not render tools, so the tool schemas would vanish from the prompt" in info.value.message
    assert info.value.hint.startswith("set template: chatml, which renders tools (LLaMA-Factory's default format")
    with pytest.raises(LmforgeError, match="does not render assistant tool calls, so a tool-call turn would train"):
        auto.encode_turns(tokenizer, CHAT)
    assert auto.encode_turns(tokenizer, [CHAT[0], {"role": "assistant", "content": "Hi"}])  # plain data still works


def test_template_with_tool_format_null_refuses_tools(tokenizer, tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text('user: "U: {{content}}\\n"\nassistant: "{{content}}{{eos_token}}"\ntool_format: null\n')
    with pytest.raises(LmforgeError, match="template plain has no tool format"):
        get_template(str(path), tokenizer).encode_turns(tokenizer, CHAT, tools=json.dumps([WEATHER]))


@pytest.mark.parametrize(
    ("calls", "reason"),
    [
        ('{"name": "f", "arguments": "{city: Paris}"}', "tool call arguments are not valid JSON"),
        ('{"name": "f", "arguments": [1, 2]}', "tool call arguments are not a JSON object"),
        ("Action: f", "tool call is not valid JSON"),
        ('{"arguments": {}}', "tool call has no function name"),
    ],
)
def test_one_normaliser_refuses_malformed_calls_in_data_and_templates(tokenizer, calls, reason):
    with pytest.raises(LmforgeError, match=reason):
        normalize_tool_calls(calls)
    chat = [CHAT[0], {"role": "assistant", "content": "", "tool_calls": calls}]
    with pytest.raises(LmforgeError, match=reason):
        get_template("qwen", tokenizer).encode_turns(tokenizer, chat)


def test_normaliser_accepts_every_spelling():
    openai = [{"type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
    assert normalize_tool_calls(openai) == normalize_tool_calls('{"name": "f", "arguments": {"a": 1}}')
    assert normalize_tool_calls('[{"name": "g"}]') == [{"name": "g", "arguments": {}}]
    assert normalize_tool_calls("") == []
