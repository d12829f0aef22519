"""``ScriptedEngine``: a fake engine behind the real app and the real template, answering one fixed
text, for the response shapes a tiny random model never writes (tool calls). The prompt side is
real: each request's prompt ids and sampling settings are kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lmforge.infer.engine import Engine, Handle
from lmforge.infer.params import GenerationEvent, SamplingParams


class _Done(Handle):
    def cancel(self) -> None:
        return None


class ScriptedEngine(Engine):
    """Answers ``answer`` to every request, streamed in ``pieces`` parts, after ``template``'s prompt."""

    def __init__(self, tokenizer: Any, template: str, answer: str, pieces: int = 2) -> None:
        from lmforge.data.templates import get_template

        self.tokenizer = tokenizer
        self.template = get_template(template, tokenizer)
        self.answer, self.pieces = answer, pieces
        self.model_name = "scripted"
        self.context_len = 2048
        self.defaults = SamplingParams(max_new_tokens=64)
        self.requests: list[tuple[list[int], SamplingParams]] = []

    @property
    def prompts(self) -> list[list[int]]:
        return [prompt for prompt, _ in self.requests]

    def submit(self, prompt_ids: Any, params: SamplingParams, sink: Any) -> Handle:
        self.requests.append((list(prompt_ids), params))
        cut = len(self.answer) // self.pieces if self.pieces > 1 else 0
        if cut:
            sink(GenerationEvent(self.answer[:cut]))
        sink(GenerationEvent(self.answer[cut:], [], "stop", len(prompt_ids), 20))
        return _Done()


def serve_scripted(engine: ScriptedEngine, server_factory: Any) -> Iterator[tuple[ScriptedEngine, Any]]:
    """The engine behind the real server on loopback, and an ``openai`` client for it (a fixture body)."""
    start_server, make_client = server_factory
    server = start_server(engine)
    yield engine, make_client(server, "unused")
    server.stop()
