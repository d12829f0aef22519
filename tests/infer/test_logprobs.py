"""Log probabilities: the engine's against a step-by-step reference on the tiny model, then the
API's shapes (chat and text completions, whole and streamed) through the official client."""

from __future__ import annotations

import math

import pytest
import torch

from lmforge.infer.params import SamplingParams

QUESTION = [{"role": "user", "content": "Count to ten."}]


def test_engine_logprobs_are_the_models_log_softmax_at_each_step(tiny_engine):
    prompt = tiny_engine.encode_chat(QUESTION)
    answer = tiny_engine.generate(prompt, SamplingParams(max_new_tokens=6, logprobs=3))
    assert [e.token_id for e in answer.logprobs] == answer.token_ids and len(answer.logprobs) == 6
    ids = list(prompt)
    with torch.inference_mode():
        for entry in answer.logprobs:
            reference = tiny_engine.model(torch.tensor([ids])).logits[0, -1].float().log_softmax(-1)
            top = reference.topk(3)
            assert [i for i, _ in entry.top] == top.indices.tolist()
            assert entry.top[0][0] == entry.token_id  # greedy: the chosen token is the likeliest
            assert entry.logprob == pytest.approx(float(reference[entry.token_id]), abs=1e-4)
            ids.append(entry.token_id)
    plain = tiny_engine.generate(prompt, SamplingParams(max_new_tokens=6))
    assert plain.logprobs == [] and plain.token_ids == answer.token_ids  # asking for them changes nothing


def test_beam_search_with_logprobs_is_refused(tiny_engine):
    from lmforge.errors import LmforgeError

    with pytest.raises(LmforgeError, match="beam search"):
        tiny_engine.generate([1, 2, 3], SamplingParams(num_beams=2, logprobs=0))


def test_chat_logprobs_have_openai_shape_and_match_when_streamed(client, tiny_engine):
    kwargs = {"model": tiny_engine.model_name, "messages": QUESTION, "max_tokens": 6, "temperature": 0}
    reply = client.chat.completions.create(logprobs=True, top_logprobs=2, **kwargs)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for token in content:
        assert token.top_logprobs[0].token == token.token and len(token.top_logprobs) == 2
        assert token.logprob <= 0 and bytes(token.bytes).decode() == token.token
    assert sum(math.exp(t.logprob) for t in content[0].top_logprobs) <= 1.0
    plain = client.chat.completions.create(**kwargs)
    assert plain.choices[0].logprobs is None and plain.choices[0].message.content == reply.choices[0].message.content
    chunks = client.chat.completions.create(logprobs=True, top_logprobs=2, stream=True, **kwargs)
    streamed = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert [(t.token, t.logprob) for t in streamed] == [(t.token, t.logprob) for t in content]


def test_text_completion_logprobs_have_the_legacy_shape(client, tiny_engine):
    kwargs = {"model": tiny_engine.model_name, "prompt": "Once upon a time", "max_tokens": 5, "temperature": 0}
    reply = client.completions.create(logprobs=2, **kwargs)
    choice = reply.choices[0]
    lp = choice.logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == reply.usage.completion_tokens
    assert "".join(lp.tokens) == choice.text
    assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(len(lp.tokens))]
    assert all(
        len(top) <= 2 and max(top.values()) == pytest.approx(p) for top, p in zip(lp.top_logprobs, lp.token_logprobs)
    )
    streamed = client.completions.create(logprobs=2, stream=True, **kwargs)
    tokens = [t for c in streamed for ch in c.choices if ch.logprobs for t in ch.logprobs.tokens]
    assert tokens == lp.tokens
