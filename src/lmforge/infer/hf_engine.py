"""The transformers backend: the model loaded once, a continuous-batching scheduler around it."""

from __future__ import annotations

from typing import Any

import torch

from lmforge.config.schema import RunConfig
from lmforge.errors import LmforgeError
from lmforge.infer.engine import Engine, Handle, Sink
from lmforge.infer.params import SamplingParams
from lmforge.infer.scheduler import BatchScheduler, Request
from lmforge.infer.textstream import TextStream
from lmforge.models.loader import load_model
from lmforge.models.tokenizer import build_tokenizer_and_template


class _RequestHandle(Handle):
    def __init__(self, request: Request) -> None:
        self.request = request

    def cancel(self) -> None:
        self.request.cancel()


class HfEngine(Engine):
    def __init__(self, cfg: RunConfig, *, max_batch_size: int = 16, max_queue: int = 64) -> None:
        self.tokenizer, self.template, _ = build_tokenizer_and_template(cfg)
        self.model = load_model(cfg.model, self.tokenizer)
        self.model_name = cfg.model.model_name_or_path
        self.defaults = SamplingParams.from_config(cfg.generate)
        self.context_len = _context_len(self.model, cfg.data.cutoff_len)
        self.stop_words = tuple(self.template.stop_token_strings(self.tokenizer))
        self.scheduler = BatchScheduler(
            self.model,
            self.tokenizer,
            eos_token_ids(self.model, self.tokenizer, self.template),
            context_len=self.context_len,
            max_batch_size=max_batch_size,
            max_queue=max_queue,
        )

    supports_logprobs = True

    def submit(self, prompt_ids: list[int], params: SamplingParams, sink: Sink) -> Handle:
        if params.logprobs is not None and params.num_beams > 1:
            raise LmforgeError("logprobs are not computed for beam search", "use num_beams: 1 to get logprobs")
        stream = TextStream(self.tokenizer, self.stop_words + params.stop, params.skip_special_tokens)
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.model.device).manual_seed(params.seed)
        request = Request(list(prompt_ids), params, sink, stream, generator)
        self.scheduler.submit(request)
        return _RequestHandle(request)

    def close(self) -> None:
        self.scheduler.close()


def eos_token_ids(model: Any, tokenizer: Any, template: Any) -> set[int]:
    """Ids that end an answer: the template's end-of-turn tokens, the tokenizer's and the model's eos."""
    ids = set(template.eot_token_ids(tokenizer))
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return ids


def _context_len(model: Any, cutoff_len: int) -> int:
    """The longest prompt + answer the model handles: its position limit (cutoff_len if unknown)."""
    limit = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    return int(limit) if limit else cutoff_len
