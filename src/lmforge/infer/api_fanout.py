"""Running the n choices of one API request on the engine and merging their events.

All requests are submitted before the HTTP response starts, so a full queue becomes a clean 503
(already-submitted siblings are cancelled). Leaving the event loop early, as when a streaming
client disconnects and Starlette cancels the response, cancels every choice still generating.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lmforge.infer.engine import Engine, Handle
from lmforge.infer.params import Completion, GenerationEvent, SamplingParams, TokenLogprob


class Fanout:
    def __init__(self, engine: Engine, prompts: list[list[int]], params: SamplingParams) -> None:
        self.prompts = prompts
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[int, GenerationEvent]] = asyncio.Queue()
        self._handles: list[Handle] = []
        try:
            for index, prompt in enumerate(prompts):
                self._handles.append(engine.submit(prompt, params, self._sink(index)))
        except BaseException:
            self.cancel()
            raise

    def _sink(self, index: int):
        return lambda event: self._loop.call_soon_threadsafe(self._queue.put_nowait, (index, event))

    def cancel(self) -> None:
        for handle in self._handles:
            handle.cancel()

    async def events(self) -> AsyncIterator[tuple[int, GenerationEvent]]:
        """(choice index, event) pairs until every choice has finished."""
        open_choices = len(self._handles)
        try:
            while open_choices:
                index, event = await self._queue.get()
                if event.finish_reason is not None:
                    open_choices -= 1
                yield index, event
        finally:
            self.cancel()

    async def completions(self) -> list[Completion]:
        """Whole answers, in choice order (for non-streaming responses)."""
        texts: list[list[str]] = [[] for _ in self._handles]
        logprobs: list[list[TokenLogprob]] = [[] for _ in self._handles]
        done: list[Completion | None] = [None] * len(self._handles)
        async for index, event in self.events():
            texts[index].append(event.text)
            logprobs[index].extend(event.logprobs)
            if event.finish_reason is not None:
                if event.error:
                    raise RuntimeError(f"generation failed: {event.error}")
                done[index] = Completion(
                    "".join(texts[index]),
                    event.token_ids,
                    event.finish_reason,
                    event.prompt_tokens,
                    event.completion_tokens,
                    logprobs[index],
                )
        return [c for c in done if c is not None]
