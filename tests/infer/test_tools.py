"""Tool calls through the real server. A tiny random model never writes ``<tool_call>``, so the
response-shape test puts ``ScriptedEngine`` (a fake engine that answers a fixed text) behind the
real app; the prompt side runs on the real engine and template."""

from __future__ import annotations

import json

import pytest

from .scripted_engine import ScriptedEngine, serve_scripted

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ANSWER = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


@pytest.fixture(scope="module")
def scripted(tokenizer, server_factory):
    yield from serve_scripted(ScriptedEngine(tokenizer, "qwen", ANSWER), server_factory)


def test_tool_calls_answer_has_openai_shape(scripted):
    engine, client = scripted
    reply = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=TOOLS
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert (call.type, call.function.name, json.loads(call.function.arguments)) == (
        "function", "get_weather", {"city": "Paris"},
    )  # fmt: skip
    assert "get_weather" in engine.tokenizer.decode(engine.prompts[-1])  # tools reach the prompt


def test_streamed_tool_calls_arrive_whole(scripted):
    _, client = scripted
    chunks = list(
        client.chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS, stream=True
        )
    )
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert [c.function.name for c in calls] == ["get_weather"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_results_continue_the_conversation(scripted):
    engine, client = scripted
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]  # fmt: skip
    client.chat.completions.create(model="scripted", messages=messages, tools=TOOLS)
    canonical = [
        messages[0],
        {"role": "assistant", "content": "", "tool_calls": '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'},
        {"role": "tool", "content": "sunny"},
    ]
    assert engine.prompts[-1] == engine.template.encode_prompt(engine.tokenizer, canonical, None, TOOLS)


def test_template_that_cannot_render_tools_refuses_them(tiny_model_dir, engine_factory, server_factory):
    import openai

    # chatml renders tools in LLaMA-Factory's default format; SmolLM2's own chat template ignores them
    engine = engine_factory(tiny_model_dir, template="auto")
    start_server, make_client = server_factory
    server = start_server(engine)
    try:
        with pytest.raises(openai.BadRequestError) as err:
            make_client(server, "unused").chat.completions.create(
                model=engine.model_name, messages=[{"role": "user", "content": "hi"}], tools=TOOLS
            )
    finally:
        server.stop()
        engine.close()
    assert err.value.body["param"] == "tools"
