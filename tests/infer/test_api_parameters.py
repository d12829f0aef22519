"""Every OpenAI parameter is honoured or refused: neutral values pass (clients send them), the
implemented ones show their effect, the others are a 400 naming the parameter. The refusal and
``tool_choice`` checks put a scripted engine behind the real app; the effects run on the tiny model."""

from __future__ import annotations

import json

import pytest

from .scripted_engine import ScriptedEngine

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
HI = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture(scope="module")
def scripted(tokenizer):
    from fastapi.testclient import TestClient

    from lmforge.infer.api_schemas import ApiSettings
    from lmforge.infer.api_server import create_app

    engine = ScriptedEngine(tokenizer, "qwen", CALL, pieces=1)
    with TestClient(create_app(engine, ApiSettings())) as http:
        yield engine, http


def _chat(http, **body):
    return http.post("/v1/chat/completions", json={"model": "scripted", "messages": HI, **body})


NEUTRAL = {
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
    "top_logprobs": 0,
    "logit_bias": {},
    "response_format": {"type": "text"},
    "tool_choice": "auto",
    "user": "someone",
    "parallel_tool_calls": True,
}


def test_neutral_values_that_clients_send_are_accepted(scripted):
    _, http = scripted
    reply = _chat(http, tools=TOOLS, **NEUTRAL)
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["finish_reason"] == "tool_calls"  # auto: parsed as before
    text = http.post(
        "/v1/completions",
        json={"model": "scripted", "prompt": "Hi", "echo": False, "best_of": 1, "suffix": None, "logprobs": None},
    )
    assert text.status_code == 200 and text.json()["choices"][0]["text"] == CALL


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("chat", {"logprobs": True}, "logprobs"),  # this engine computes none (as infer_backend: vllm)
        ("chat", {"top_logprobs": 3}, "top_logprobs"),
        ("chat", {"response_format": {"type": "json_object"}}, "response_format"),
        ("chat", {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
        ("chat", {"tools": TOOLS, "tool_choice": "required"}, "tool_choice"),
        ("chat", {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
         "tool_choice"),
        ("chat", {"logit_bias": {"50256": -100}}, "logit_bias"),
        ("chat", {"top_logprobs": 2, "logprobs": False}, "top_logprobs"),
        ("text", {"logprobs": 1, "echo": True}, "logprobs"),
        ("text", {"best_of": 2}, "best_of"),
        ("text", {"suffix": "end."}, "suffix"),
    ],
)  # fmt: skip
def test_unsupported_values_are_refused_naming_the_parameter(scripted, path, body, param):
    engine, http = scripted
    before = len(engine.requests)
    if path == "chat":
        reply = _chat(http, **body)
    else:
        reply = http.post("/v1/completions", json={"model": "scripted", "prompt": "Hi", **body})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, "unsupported_parameter", "invalid_request_error")
    assert param in error["message"]
    assert len(engine.requests) == before  # nothing was generated


def test_tool_choice_none_keeps_tools_out_of_the_prompt_and_the_answer_unparsed(scripted, tokenizer):
    engine, http = scripted
    reply = _chat(http, tools=TOOLS, tool_choice="none")
    choice = reply.json()["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("stop", CALL)
    assert "tool_calls" not in choice["message"]
    assert engine.requests[-1][0] == engine.template.encode_prompt(tokenizer, HI, None, None)
    streamed = _chat(http, tools=TOOLS, tool_choice="none", stream=True).text
    chunks = [json.loads(line[6:]) for line in streamed.splitlines() if line.startswith("data: {")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == CALL
    with_tools = _chat(http, tools=TOOLS, tool_choice="auto")
    assert with_tools.json()["choices"][0]["finish_reason"] == "tool_calls"
    assert "get_weather" in tokenizer.decode(engine.requests[-1][0])


def test_penalties_reach_the_sampler(scripted):
    engine, http = scripted
    assert _chat(http, presence_penalty=1.5, frequency_penalty=-0.5).status_code == 200
    params = engine.requests[-1][1]
    assert (params.presence_penalty, params.frequency_penalty) == (1.5, -0.5)
    assert _chat(http, presence_penalty=2.5).json()["error"]["param"] == "presence_penalty"  # OpenAI's range


def test_penalised_api_answer_equals_the_engine_with_those_penalties(client, tiny_engine):
    question = [{"role": "user", "content": "Count to ten."}]
    reply = client.chat.completions.create(
        model=tiny_engine.model_name, messages=question, max_tokens=10, presence_penalty=2, frequency_penalty=2
    )
    params = tiny_engine.defaults.updated(max_new_tokens=10, presence_penalty=2.0, frequency_penalty=2.0)
    expected = tiny_engine.generate(tiny_engine.encode_chat(question), params).text
    plain = tiny_engine.generate(
        tiny_engine.encode_chat(question), params.updated(presence_penalty=0.0, frequency_penalty=0.0)
    ).text
    assert reply.choices[0].message.content == expected != plain


def test_echo_puts_the_prompt_before_the_answer(client, tiny_engine):
    kwargs = {"model": tiny_engine.model_name, "prompt": ["Once upon a time", "The end"], "max_tokens": 4}
    plain = client.completions.create(**kwargs)
    echoed = client.completions.create(echo=True, **kwargs)
    assert [c.text for c in echoed.choices] == [p + c.text for p, c in zip(kwargs["prompt"], plain.choices)]
    assert echoed.usage == plain.usage
    streamed = client.completions.create(echo=True, stream=True, **kwargs)
    texts = ["", ""]
    for chunk in streamed:
        for choice in chunk.choices:
            texts[choice.index] += choice.text
    assert texts == [c.text for c in echoed.choices]
