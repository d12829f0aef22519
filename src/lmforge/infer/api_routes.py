"""The generation endpoints: ``/v1/chat/completions`` and ``/v1/completions``; and, for a reward
model (``stage: rm``, infer/scoring.py), ``/v1/score/evaluation``.

Prompts are built by the engine's template (train/serve parity); a prompt that leaves no room in
the model's context is a 413. With ``tools`` (and ``tool_choice`` not ``"none"``), answers are
parsed for tool calls by the template; a streamed answer is then held until it is complete, since
a partial ``<tool_call>`` cannot be told apart from text. Parameters the server does not implement
are refused (400) at non-neutral values before anything is generated.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from lmforge.errors import LmforgeError
from lmforge.infer import api_responses as R
from lmforge.infer.api_fanout import Fanout
from lmforge.infer.api_logprobs import chat_logprobs, text_logprobs
from lmforge.infer.api_responses import ApiError
from lmforge.infer.api_schemas import ChatCompletionRequest, CompletionRequest, _Sampling
from lmforge.infer.engine import Engine
from lmforge.infer.params import SamplingParams
from lmforge.infer.scheduler import EngineBusyError


def refuse_unsupported(body: _Sampling) -> None:
    """A 400 naming the first parameter set to a value this server does not implement."""
    refused = body.unsupported()
    if refused:
        param, message = refused[0]
        raise ApiError(400, message, param=param, code="unsupported_parameter")


def sampling_params(engine: Engine, body: _Sampling, prompt_len: int, limit: int | None) -> SamplingParams:
    room = engine.context_len - prompt_len
    if room <= 0:
        raise ApiError(
            413,
            f"the prompt has {prompt_len} tokens; this model's context holds {engine.context_len}",
            param="messages",
            code="context_length_exceeded",
        )
    params = engine.defaults.updated(
        top_p=body.top_p,
        top_k=body.top_k,
        repetition_penalty=body.repetition_penalty,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        seed=body.seed,
    )
    if body.temperature is not None:
        params = params.updated(temperature=body.temperature, do_sample=body.temperature > 0)
    params = replace(params, max_new_tokens=min(limit or params.max_new_tokens, room), stop=body.stop_words())
    return _with_logprobs(engine, params, body.logprobs_wanted())


def _with_logprobs(engine: Engine, params: SamplingParams, wanted: int | None) -> SamplingParams:
    if wanted is None:
        return params
    if not engine.supports_logprobs:
        raise ApiError(
            400, "logprobs is not supported by this engine (infer_backend: hf computes them); leave it out",
            param="logprobs", code="unsupported_parameter",
        )  # fmt: skip
    if params.num_beams > 1:
        raise ApiError(
            400, f"logprobs is not supported with beam search (num_beams: {params.num_beams} in the config)",
            param="logprobs", code="unsupported_parameter",
        )  # fmt: skip
    return replace(params, logprobs=wanted)


def start(engine: Engine, prompts: list[list[int]], params: SamplingParams) -> Fanout:
    try:
        return Fanout(engine, prompts, params)
    except EngineBusyError as err:
        raise ApiError(503, str(err), type_="server_error", code="server_busy") from None


def _conversation(engine: Engine, body: ChatCompletionRequest) -> tuple[list[int], str | None]:
    """Prompt ids and the tools JSON (None when the request has none)."""
    system = "\n".join(m.text() for m in body.messages if m.role in ("system", "developer")) or None
    messages = [m.canonical() for m in body.messages if m.role not in ("system", "developer")]
    tools = None
    if body.tools_enabled:
        if not getattr(engine.template, "supports_tools", False):
            raise ApiError(400, f"template {engine.template.name} does not support tools", param="tools")
        tools = json.dumps([t.model_dump(exclude_none=True) for t in body.tools], ensure_ascii=False)
    if not messages or messages[-1]["role"] not in ("user", "tool"):
        raise ApiError(400, "the last message must be from the user or a tool", param="messages")
    try:
        return engine.encode_chat(messages, system, tools), tools
    except LmforgeError as err:
        raise ApiError(400, str(err), param="messages") from None


async def chat_completions(engine: Engine, body: ChatCompletionRequest) -> Any:
    refuse_unsupported(body)
    prompt, tools = _conversation(engine, body)
    params = sampling_params(engine, body, len(prompt), body.token_limit())
    fanout = start(engine, [prompt] * body.n, params)
    rid = R.new_id("chatcmpl")
    parse = engine.template.parse_tool_calls if tools else None
    shape = (lambda entries: chat_logprobs(engine.tokenizer, entries)) if params.logprobs is not None else None
    if body.stream:
        return _sse(_chat_stream(fanout, rid, body, len(prompt), parse, shape))
    done = await fanout.completions()
    choices = []
    for index, completion in enumerate(done):
        message, reason = R.chat_message(completion.text, parse(completion.text) if parse else None)
        finish = reason or completion.finish_reason
        logprobs = shape(completion.logprobs) if shape else None
        choices.append({"index": index, "message": message, "finish_reason": finish, "logprobs": logprobs})
    return R.chat_completion(rid, body.model, choices, len(prompt), done)


async def _chat_stream(
    fanout: Fanout, rid: str, body: ChatCompletionRequest, prompt_len: int, parse, shape
) -> AsyncIterator[str]:
    obj, model = "chat.completion.chunk", body.model
    extra = {"usage": None} if body.include_usage else {}

    def send(index: int, delta: dict[str, Any], reason: str | None = None, logprobs=None) -> str:
        choice = {"index": index, "delta": delta, "finish_reason": reason, "logprobs": logprobs}
        return R.chunk(rid, obj, model, [choice], **extra)

    for index in range(body.n):
        yield send(index, {"role": "assistant", "content": ""})
    held: dict[int, list[str]] = {i: [] for i in range(body.n)}
    held_logprobs: dict[int, list] = {i: [] for i in range(body.n)}
    completion_tokens = 0
    async for index, event in fanout.events():
        if event.error:
            yield R.error_event(event.error)
            return
        if parse:
            held[index].append(event.text)
            held_logprobs[index].extend(event.logprobs)
        elif event.text or (shape and event.logprobs):
            yield send(index, {"content": event.text}, logprobs=shape(event.logprobs) if shape else None)
        if event.finish_reason is None:
            continue
        completion_tokens += event.completion_tokens
        reason = event.finish_reason
        if parse:
            text = "".join(held[index])
            message, tool_reason = R.chat_message(text, parse(text))
            delta = {k: v for k, v in message.items() if k != "role" and v is not None}
            yield send(index, delta, logprobs=shape(held_logprobs[index]) if shape else None)
            reason = tool_reason or reason
        yield send(index, {}, reason)
    if body.include_usage:
        yield R.chunk(rid, obj, model, [], usage=R.usage(prompt_len, completion_tokens))
    yield R.DONE


async def completions(engine: Engine, body: CompletionRequest) -> Any:
    refuse_unsupported(body)
    prompts = [engine.encode_text(text) for text in body.prompts()]
    if any(not p for p in prompts):
        raise ApiError(400, "prompt must not be empty", param="prompt")
    longest = max(len(p) for p in prompts)
    params = sampling_params(engine, body, longest, body.token_limit())
    fanout = start(engine, [p for p in prompts for _ in range(body.n)], params)
    prompt_tokens = sum(len(p) for p in prompts)
    rid = R.new_id("cmpl")
    if body.stream:
        tokenizer = engine.tokenizer if params.logprobs is not None else None
        return _sse(_text_stream(fanout, rid, body, prompt_tokens, tokenizer))
    done = await fanout.completions()
    echoed = _echoes(body)
    wanted = params.logprobs is not None
    choices = [
        {
            "index": i,
            "text": echoed[i] + c.text,
            "finish_reason": c.finish_reason,
            "logprobs": text_logprobs(engine.tokenizer, c.logprobs) if wanted else None,
        }
        for i, c in enumerate(done)
    ]
    return {
        "id": rid,
        "object": "text_completion",
        "created": R.now(),
        "model": body.model,
        "choices": choices,
        "usage": R.usage(prompt_tokens, sum(c.completion_tokens for c in done)),
    }


def _echoes(body: CompletionRequest) -> list[str]:
    """The text each choice starts with: its prompt with ``echo``, else nothing."""
    return [text if body.echo else "" for text in body.prompts() for _ in range(body.n)]


async def _text_stream(
    fanout: Fanout, rid: str, body: CompletionRequest, prompt_tokens: int, tokenizer: Any
) -> AsyncIterator[str]:
    """``tokenizer``: set when the request asked for logprobs."""
    completion_tokens = 0
    extra = {"usage": None} if body.include_usage else {}
    for index, text in enumerate(_echoes(body)):
        if text:
            choice = {"index": index, "text": text, "finish_reason": None, "logprobs": None}
            yield R.chunk(rid, "text_completion", body.model, [choice], **extra)
    offsets = [0] * len(fanout.prompts)  # characters of token text sent per choice (text_offset)
    async for index, event in fanout.events():
        if event.error:
            yield R.error_event(event.error)
            return
        completion_tokens += event.completion_tokens
        logprobs = None
        if tokenizer is not None and event.logprobs:
            logprobs = text_logprobs(tokenizer, event.logprobs, offsets[index])
            offsets[index] += sum(len(t) for t in logprobs["tokens"])
        if event.text or event.finish_reason or logprobs:
            choice = {"index": index, "text": event.text, "finish_reason": event.finish_reason, "logprobs": logprobs}
            yield R.chunk(rid, "text_completion", body.model, [choice], **extra)
    if body.include_usage:
        yield R.chunk(rid, "text_completion", body.model, [], usage=R.usage(prompt_tokens, completion_tokens))
    yield R.DONE


def _sse(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


class ScoreEvaluationRequest(BaseModel):
    """LLaMA-Factory's scoring request: each message is one rendered text to score."""

    model: str
    messages: list[str] = Field(min_length=1)
    max_length: int | None = Field(None, ge=1)


def require_generator(engine: Any) -> None:
    if getattr(engine, "serves_scores", False):
        raise ApiError(400, "this server serves a reward model: use POST /v1/score/evaluation", param="model")


async def score_evaluation(engine: Any, body: ScoreEvaluationRequest) -> dict[str, Any]:
    if not getattr(engine, "serves_scores", False):
        raise ApiError(
            400, "this server serves a generative model, which gives no scores; start lmforge api with stage: rm "
            "and a reward model", param="model",
        )  # fmt: skip
    if any(not text for text in body.messages):
        raise ApiError(400, "messages must not contain empty texts", param="messages")
    scores = await asyncio.to_thread(engine.score, body.messages, body.max_length)
    return {"id": R.new_id("scoreval"), "object": "score.evaluation", "model": body.model, "scores": scores}
