"""A model that answers in LLaMA-Factory's default tool format (``Action:`` / ``Action Input:``
lines, what ``template: chatml`` trains) gets structured tool calls back through the real server and
the official ``openai`` client; a request whose tool-call arguments are not JSON is a 400 in OpenAI's
error shape, not a 500."""

from __future__ import annotations

import json

import openai
import pytest

from .scripted_engine import ScriptedEngine, serve_scripted

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
ANSWER = 'I will look it up.\nAction: get_weather\nAction Input: {"city": "Paris"}'


@pytest.fixture(scope="module")
def scripted(tokenizer, server_factory):
    """``ANSWER`` in two pieces behind the real chatml template."""
    yield from serve_scripted(ScriptedEngine(tokenizer, "chatml", ANSWER), server_factory)


def _call(message) -> tuple[str, str, dict]:
    (call,) = message.tool_calls
    return call.type, call.function.name, json.loads(call.function.arguments)


def test_default_format_answer_is_a_structured_tool_call(scripted):
    engine, client = scripted
    reply = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=TOOLS
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert _call(choice.message) == ("function", "get_weather", {"city": "Paris"})
    prompt = engine.tokenizer.decode(engine.prompts[-1])
    assert "> Tool Name: get_weather\nTool Description: Current weather of a city\n" in prompt
    assert "  - city (string, required): \n" in prompt


def test_streamed_default_format_answer_arrives_as_one_tool_call(scripted):
    _, client = scripted
    stream = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS, stream=True
    )
    chunks = [c for c in stream if c.choices]
    calls = [d.tool_calls for c in chunks if (d := c.choices[0].delta).tool_calls]
    assert len(calls) == 1 and calls[0][0].function.name == "get_weather"
    assert json.loads(calls[0][0].function.arguments) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_history_with_a_tool_call_renders_it_in_the_default_format(scripted):
    engine, client = scripted
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]  # fmt: skip
    client.chat.completions.create(model="scripted", messages=messages, tools=TOOLS)
    prompt = engine.tokenizer.decode(engine.prompts[-1])
    assert prompt.endswith(
        '<|im_start|>assistant\nAction: get_weather\nAction Input: {"city": "Paris"}<|im_end|>\n'
        "<|im_start|>tool\nsunny<|im_end|>\n<|im_start|>assistant\n"
    )


def test_tool_call_arguments_that_are_not_json_are_a_400(scripted):
    _, client = scripted
    bad = {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": "{city: Paris"}}
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [bad]},
        {"role": "tool", "tool_call_id": "c", "content": "sunny"},
    ]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="scripted", messages=messages, tools=TOOLS)
    error = info.value.body
    assert error["param"] == "messages.1.tool_calls.0.function.arguments"
    assert "tool call arguments are not valid JSON" in error["message"]
