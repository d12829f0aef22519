"""Continuous batching on transformers: one background thread owns the model and runs a step
loop. Each step first prefills newly arrived requests together (left-padded, one forward pass)
and merges them into the running batch, then decodes one token for every active row. Finished or
cancelled rows leave after any step, so a short answer never waits for a long one.

Costs and limits: the KV cache is transformers' ``DynamicCache``, which concatenates per step, so
each step copies the cache (as ``model.generate`` does); padding columns cost attention work until
the longest-waiting row leaves. Beam search (``num_beams > 1``) runs alone through
``model.generate`` between steps. The queue is bounded: ``submit`` raises ``EngineBusyError``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache, LogitsProcessor, LogitsProcessorList

from lmforge.errors import LmforgeError
from lmforge.infer.batch import Batch, prefill_inputs
from lmforge.infer.params import GenerationEvent, SamplingParams, TokenLogprob
from lmforge.infer.sampling import apply_presence_frequency_penalty, next_tokens, token_logprob
from lmforge.infer.textstream import TextStream

logger = logging.getLogger(__name__)


class EngineBusyError(LmforgeError):
    """The request queue is full; the API answers 503."""


@dataclass(eq=False)
class Request:
    prompt_ids: list[int]
    params: SamplingParams
    sink: Callable[[GenerationEvent], None]
    stream: TextStream
    generator: torch.Generator | None = None
    generated: list[int] = field(default_factory=list)
    unsent_logprobs: list[TokenLogprob] = field(default_factory=list)  # with params.logprobs
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: bool = False  # its last event was sent

    def cancel(self) -> None:
        """Ask the scheduler to drop this request at its next step (e.g. the client left)."""
        self.cancelled.set()


class BatchScheduler:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        eos_ids: set[int],
        *,
        context_len: int,
        max_batch_size: int = 16,
        max_queue: int = 64,
    ) -> None:
        self.model = model
        self.device = model.device  # every tensor the loop makes follows the model (GPU, MPS, CPU)
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.context_len = context_len
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self._waiting: list[Request] = []
        self._in_flight = 0
        self._batch: Batch | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="lmforge-scheduler", daemon=True)
        self._thread.start()

    def submit(self, request: Request) -> None:
        with self._cond:
            if self._closed:
                raise LmforgeError("the inference engine is closed")
            if self._in_flight >= self.max_queue:
                raise EngineBusyError(f"server busy: {self._in_flight} requests in flight", "retry later")
            self._in_flight += 1
            self._waiting.append(request)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=30)

    # -- the step loop (scheduler thread only) ------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._waiting and self._batch is None:
                    self._cond.wait()
                if self._closed:
                    break
                free = self.max_batch_size - (len(self._batch) if self._batch else 0)
                new, self._waiting = self._waiting[:free], self._waiting[free:]
            try:
                with torch.inference_mode():
                    self._step(new)
            except Exception as err:  # a bug or out of memory: fail these requests, keep serving
                logger.exception("generation step failed")
                self._fail_all(new, err)
        self._fail_all(self._waiting, LmforgeError("the inference engine was closed"))

    def _step(self, new: list[Request]) -> None:
        new = [r for r in new if not self._dropped(r)]
        for request in [r for r in new if r.params.num_beams > 1]:
            self._generate_alone(request)
        new = [r for r in new if r.params.num_beams == 1]
        if new:
            self._admit(new)
        if self._batch is not None:
            self._decode()

    def _admit(self, requests: list[Request]) -> None:
        inputs = prefill_inputs([r.prompt_ids for r in requests], self.tokenizer.pad_token_id, self.device)
        cache = DynamicCache()
        out = self.model(**inputs, past_key_values=cache, use_cache=True, logits_to_keep=1)
        tokens = self._choose(requests, out.logits[:, -1])
        batch = Batch(requests, cache, inputs["attention_mask"], self._tensor(tokens))
        self._retire(batch, tokens)
        if len(batch) == 0:
            return
        if self._batch is None:
            self._batch = batch
        else:
            self._batch.merge(batch)

    def _decode(self) -> None:
        batch = self._batch
        assert batch is not None
        out = self.model(**batch.decode_inputs())
        tokens = self._choose(batch.requests, out.logits[:, -1])
        batch.pending = self._tensor(tokens)
        self._retire(batch, tokens)
        if len(batch) == 0:
            self._batch = None

    def _tensor(self, ids: list[int]) -> torch.Tensor:
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def _choose(self, requests: list[Request], logits: torch.Tensor) -> list[int]:
        seen = [_seen(r, self.device) for r in requests]
        generated = [_generated(r, self.device) for r in requests]
        params = [r.params for r in requests]
        tokens = next_tokens(logits.float(), params, seen, [r.generator for r in requests], generated)
        for row, (request, token) in enumerate(zip(requests, tokens, strict=True)):
            if request.params.logprobs is not None:
                request.unsent_logprobs.append(token_logprob(logits[row], token, request.params.logprobs))
        return tokens

    def _retire(self, batch: Batch, tokens: list[int]) -> None:
        """Hand each row its token; drop rows that finished or were cancelled."""
        keep = [i for i, (r, t) in enumerate(zip(batch.requests, tokens, strict=True)) if not self._accept(r, t)]
        if len(keep) < len(batch):
            batch.select(keep)

    def _accept(self, request: Request, token: int) -> bool:
        """Record one token; send the text it makes safe to show. True when the request is done."""
        if self._dropped(request):
            return True
        request.generated.append(token)
        if token in self.eos_ids:
            del request.unsent_logprobs[-1:]  # the end-of-turn token is not part of the answer
            return self._finish(request, "stop")
        delta = request.stream.push(token)
        if request.stream.stopped:
            return self._finish(request, "stop", delta)
        total = len(request.prompt_ids) + len(request.generated)
        if len(request.generated) >= request.params.max_new_tokens or total >= self.context_len:
            return self._finish(request, "length", delta)
        if delta:
            _send(request, GenerationEvent(delta, [token], logprobs=_take_logprobs(request)))
        return False

    def _finish(self, request: Request, reason: str, delta: str = "") -> bool:
        text = delta + (request.stream.flush() if not request.stream.stopped else "")
        self._complete(request, GenerationEvent(text, [], reason))
        return True

    def _dropped(self, request: Request) -> bool:
        if request.cancelled.is_set():
            self._complete(request, GenerationEvent("", [], "cancelled"))
        return request.done

    def _complete(self, request: Request, event: GenerationEvent) -> None:
        """Send a request's last event (once), with the whole answer's ids and usage."""
        if request.done:
            return
        request.done = True
        with self._cond:
            self._in_flight -= 1
        event.token_ids = list(request.generated)
        event.prompt_tokens = len(request.prompt_ids)
        event.completion_tokens = len(request.generated)
        event.logprobs = _take_logprobs(request)
        _send(request, event)

    def _generate_alone(self, request: Request) -> None:
        """Beam search through transformers' own ``generate`` (not batched with other rows)."""
        p = request.params
        ids = self._tensor(request.prompt_ids)[None]
        out = self.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            num_beams=p.num_beams,
            length_penalty=p.length_penalty,
            max_new_tokens=min(p.max_new_tokens, self.context_len - ids.size(1)),
            repetition_penalty=p.repetition_penalty,
            logits_processor=LogitsProcessorList([_OpenAIPenalties(ids.size(1), p)]),
            do_sample=False,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        for token in out[0, ids.size(1) :].tolist():
            if self._accept(request, token):
                return
        self._finish(request, "length")

    def _fail_all(self, requests: list[Request], err: Exception) -> None:
        rows = list(self._batch.requests) if self._batch is not None else []
        self._batch = None
        for request in rows + requests:
            self._complete(request, GenerationEvent("", [], "error", error=str(err)))


def _seen(request: Request, device: torch.device) -> torch.Tensor:
    """Prompt + answer ids, needed only by the repetition penalty (empty otherwise: no copy per step)."""
    if request.params.repetition_penalty == 1.0:
        return torch.empty(0, dtype=torch.long, device=device)
    return torch.tensor(request.prompt_ids + request.generated, dtype=torch.long, device=device)


def _take_logprobs(request: Request) -> list[TokenLogprob]:
    """The log probabilities of the tokens since the last event (text may lag its tokens)."""
    taken, request.unsent_logprobs = request.unsent_logprobs, []
    return taken


def _generated(request: Request, device: torch.device) -> torch.Tensor | None:
    """Answer ids, needed only by the presence and frequency penalties (None otherwise)."""
    if request.params.presence_penalty == 0 and request.params.frequency_penalty == 0:
        return None
    return torch.tensor(request.generated, dtype=torch.long, device=device)


class _OpenAIPenalties(LogitsProcessor):
    """The presence/frequency penalties as a transformers logits processor, for beam search."""

    def __init__(self, prompt_len: int, params: SamplingParams) -> None:
        self.prompt_len = prompt_len
        self.params = params

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        p = self.params
        return apply_presence_frequency_penalty(
            scores, input_ids[:, self.prompt_len :], p.presence_penalty, p.frequency_penalty
        )


def _send(request: Request, event: GenerationEvent) -> None:
    try:
        request.sink(event)
    except Exception:  # a consumer that went away must not stop the loop
        logger.debug("dropping an event for a closed consumer", exc_info=True)
