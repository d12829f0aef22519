"""The OpenAI-compatible server, called with the official ``openai`` client over real HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

API_KEY = "test-key"  # the key the session server (conftest) requires

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def _chat(client, model: str, **kw):
    return client.chat.completions.create(model=model, messages=kw.pop("messages", QUESTION), **kw)


def test_models_and_health(client, tiny_engine, tiny_server):
    assert [m.id for m in client.models.list()] == [tiny_engine.model_name]
    assert httpx.get(f"{tiny_server.url}/health").json() == {"status": "ok"}


def test_chat_answer_with_usage_matches_engine(client, tiny_engine):
    reply = _chat(client, tiny_engine.model_name, temperature=0, max_tokens=8)
    prompt = tiny_engine.encode_chat(QUESTION)
    expected = tiny_engine.generate(prompt, tiny_engine.defaults.updated(max_new_tokens=8))
    assert reply.choices[0].message.content == expected.text
    assert reply.choices[0].finish_reason == expected.finish_reason
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (len(prompt), expected.completion_tokens)
    assert reply.usage.total_tokens == len(prompt) + expected.completion_tokens


def test_streamed_chat_equals_non_streamed_and_reports_usage(client, tiny_engine):
    whole = _chat(client, tiny_engine.model_name, temperature=0, max_completion_tokens=10)
    chunks = list(
        _chat(client, tiny_engine.model_name, temperature=0, max_completion_tokens=10, stream=True,
              stream_options={"include_usage": True})
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_n_choices_and_stop_words(client, tiny_engine):
    reply = _chat(client, tiny_engine.model_name, temperature=0, max_tokens=10, n=3)
    texts = [c.message.content for c in reply.choices]
    assert [c.index for c in reply.choices] == [0, 1, 2] and len(set(texts)) == 1
    assert (
        reply.usage.completion_tokens
        == 3 * _chat(client, tiny_engine.model_name, temperature=0, max_tokens=10).usage.completion_tokens
    )
    stop = texts[0][len(texts[0]) // 2 :][:3]
    cut = _chat(client, tiny_engine.model_name, temperature=0, max_tokens=10, stop=[stop])
    assert cut.choices[0].message.content == texts[0][: texts[0].index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_sixteen_concurrent_requests_get_one_at_a_time_answers(client, tiny_engine):
    questions = [[{"role": "user", "content": f"Count to {i}."}] for i in range(16)]
    alone = [_chat(client, tiny_engine.model_name, messages=q, temperature=0, max_tokens=12) for q in questions]
    with ThreadPoolExecutor(16) as pool:
        together = list(
            pool.map(
                lambda q: _chat(client, tiny_engine.model_name, messages=q, temperature=0, max_tokens=12), questions
            )
        )
    assert [r.choices[0].message.content for r in together] == [r.choices[0].message.content for r in alone]


def test_text_completions_stream_and_whole(client, tiny_engine):
    whole = client.completions.create(
        model=tiny_engine.model_name, prompt="Once upon a time", max_tokens=6, temperature=0
    )
    streamed = client.completions.create(
        model=tiny_engine.model_name, prompt="Once upon a time", max_tokens=6, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == whole.choices[0].text
    assert whole.usage.prompt_tokens == len(tiny_engine.encode_text("Once upon a time"))


def test_missing_or_wrong_api_key_is_401(tiny_server, tiny_engine, server_factory):
    _, make_client = server_factory
    with pytest.raises(openai.AuthenticationError) as err:
        _chat(make_client(tiny_server, "wrong"), tiny_engine.model_name)
    assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"
    missing = httpx.post(f"{tiny_server.url}/v1/chat/completions", json={"model": "x", "messages": QUESTION})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{tiny_server.url}/v1/models").status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        (b'{"model": "M", "messages": []}', 400, "messages"),
        (b'{"model": "M", "messages": [{"role": "user", "content": "hi"}], "temperature": 3}', 400, "temperature"),
        (b'{"model": "M", "messages": [{"role": "user", "content": "hi"}], "n": 0}', 400, "n"),
        (b'{"model": "M", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}', 400, "max_tokens"),
        (b'{"model": "M", "messages": [{"role": "wizard", "content": "hi"}]}', 400, "messages.0.role"),
        (b'{"model": "M", "messages": [{"role": "user", "content": "hi"}], "tools": "x"}', 400, "tools"),
        (b'{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}', 404, "model"),
        (b'{"model": "M", "messages": [{"role": "assistant", "content": "hi"}]}', 400, "messages"),
        (b"[1, 2]", 400, None),
    ],
)
def test_bad_requests_get_openai_errors_not_500(tiny_server, tiny_engine, body, status, param):
    body = body.replace(b'"M"', f'"{tiny_engine.model_name}"'.encode())
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    response = httpx.post(f"{tiny_server.url}/v1/chat/completions", content=body, headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param


def test_too_large_prompt_and_body_are_413(client, tiny_engine, tiny_server):
    huge = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(openai.APIStatusError) as err:
        _chat(client, tiny_engine.model_name, messages=huge)
    assert err.value.status_code == 413 and err.value.body["code"] == "context_length_exceeded"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    big = httpx.post(f"{tiny_server.url}/v1/completions", content=b"x" * (5 * 1024 * 1024), headers=headers)
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"


def test_full_queue_is_503(tiny_model_dir, engine_factory, server_factory):
    start_server, make_client = server_factory
    engine = engine_factory(tiny_model_dir, max_batch_size=1, max_queue=1)
    server = start_server(engine)
    try:
        client = make_client(server, "unused")
        stream = _chat(client, engine.model_name, max_tokens=1000, stream=True)
        next(iter(stream))
        with pytest.raises(openai.APIStatusError) as err:
            _chat(client, engine.model_name, max_tokens=2)
        assert err.value.status_code == 503 and err.value.body["code"] == "server_busy"
        stream.close()
    finally:
        server.stop()
        engine.close()
