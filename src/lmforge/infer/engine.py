"""The one inference interface that chat, webchat, the API server and evaluation use.

An ``Engine`` turns a conversation into prompt ids with the run's template (the same
``encode_prompt`` training used, so served prompts equal trained prompts token for token) and
generates with per-request ``SamplingParams``. Backends implement only ``submit``; the sync,
async and whole-answer forms are built on it here.
"""

from __future__ import annotations

import asyncio
import queue
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from lmforge.config.schema import RunConfig
from lmforge.errors import LmforgeError
from lmforge.infer.params import Completion, GenerationEvent, SamplingParams

Sink = Callable[[GenerationEvent], None]


class Handle(ABC):
    """A submitted request: the only thing a caller can do with it is cancel it."""

    @abstractmethod
    def cancel(self) -> None: ...


class Engine(ABC):
    tokenizer: Any
    template: Any
    model_name: str
    context_len: int
    defaults: SamplingParams
    supports_logprobs: bool = False  # fills GenerationEvent.logprobs when SamplingParams.logprobs is set

    @abstractmethod
    def submit(self, prompt_ids: list[int], params: SamplingParams, sink: Sink) -> Handle:
        """Queue a request; ``sink`` gets its events from the engine's thread, the last with a
        ``finish_reason``. Raises ``EngineBusyError`` when the queue is full."""

    def close(self) -> None:
        """Stop background work (a no-op for engines without any)."""
        return None

    # -- prompts -------------------------------------------------------------------------------

    def encode_chat(
        self, messages: list[dict[str, Any]], system: str | None = None, tools: str | None = None
    ) -> list[int]:
        """Prompt ids for a conversation that ends with a user or tool turn; a leading system
        message or ``system`` overrides the template's default (``data.default_system``)."""
        return self.template.encode_prompt(self.tokenizer, messages, system, tools)

    def encode_text(self, text: str) -> list[int]:
        """Prompt ids for raw text (``/v1/completions``): no template, no special tokens added."""
        return self.tokenizer.encode(text, add_special_tokens=False)

    # -- generation ------------------------------------------------------------------------------

    def stream(self, prompt_ids: list[int], params: SamplingParams | None = None) -> Iterator[GenerationEvent]:
        """Events as they come; closing the iterator early cancels the request."""
        events: queue.Queue[GenerationEvent] = queue.Queue()
        handle = self.submit(prompt_ids, params or self.defaults, events.put)
        try:
            while True:
                event = events.get()
                yield event
                if event.finish_reason is not None:
                    return
        finally:
            handle.cancel()

    async def astream(
        self, prompt_ids: list[int], params: SamplingParams | None = None
    ) -> AsyncIterator[GenerationEvent]:
        """``stream`` for asyncio servers; cancelling the consuming task cancels the request."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        handle = self.submit(
            prompt_ids, params or self.defaults, lambda e: loop.call_soon_threadsafe(events.put_nowait, e)
        )
        try:
            while True:
                event = await events.get()
                yield event
                if event.finish_reason is not None:
                    return
        finally:
            handle.cancel()

    def generate(self, prompt_ids: list[int], params: SamplingParams | None = None) -> Completion:
        return _collect(self.stream(prompt_ids, params))

    async def agenerate(self, prompt_ids: list[int], params: SamplingParams | None = None) -> Completion:
        parts: list[GenerationEvent] = [event async for event in self.astream(prompt_ids, params)]
        return _collect(iter(parts))

    def chat(
        self,
        messages: list[dict[str, Any]],
        system: str | None = None,
        tools: str | None = None,
        params: SamplingParams | None = None,
    ) -> Completion:
        """One answer to a conversation (what evaluation calls)."""
        return self.generate(self.encode_chat(messages, system, tools), params)


def _collect(events: Iterator[GenerationEvent]) -> Completion:
    text, logprobs = [], []
    for event in events:
        if event.error:
            raise LmforgeError(f"generation failed: {event.error}")
        text.append(event.text)
        logprobs.extend(event.logprobs)
        if event.finish_reason is not None:
            return Completion(
                "".join(text),
                event.token_ids,
                event.finish_reason,
                event.prompt_tokens,
                event.completion_tokens,
                logprobs,
            )
    raise LmforgeError("generation ended without a final event")


def build_engine(cfg: RunConfig, *, max_batch_size: int = 16, max_queue: int = 64) -> Engine:
    """The engine ``infer_backend`` names, loaded with the model, adapters and template of ``cfg``."""
    if cfg.model.infer_backend == "vllm":
        from lmforge.infer.vllm_engine import VllmEngine

        return VllmEngine(cfg, max_queue=max_queue)
    from lmforge.infer.hf_engine import HfEngine

    return HfEngine(cfg, max_batch_size=max_batch_size, max_queue=max_queue)
