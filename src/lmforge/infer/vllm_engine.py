"""The vLLM backend (``infer_backend: vllm``): vLLM's own continuous batching on a CUDA GPU.

Prompts still come from lmforge's template (``prompt_token_ids``), so parity with training holds
as on the transformers backend. vLLM's offline ``LLM`` runs in one worker thread that takes every
queued request per call; answers arrive whole (one event), not token by token. Adapters are
served as LoRA requests (vLLM merges nothing). vLLM pins its own torch/transformers: install it in
its own environment (docs/serving.md).
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from lmforge.config.schema import RunConfig
from lmforge.errors import LmforgeError
from lmforge.infer.engine import Engine, Handle, Sink
from lmforge.infer.params import GenerationEvent, SamplingParams
from lmforge.infer.scheduler import EngineBusyError
from lmforge.models.resolve import resolve_model
from lmforge.models.tokenizer import build_tokenizer_and_template


def require_vllm() -> Any:
    """vllm, or a LmforgeError saying what is missing (the package or a CUDA GPU)."""
    try:
        import vllm
    except ImportError:
        raise LmforgeError(
            "infer_backend: vllm needs the vllm package", "pip install vllm, or use infer_backend: hf"
        ) from None
    import torch

    if not torch.cuda.is_available():
        raise LmforgeError("infer_backend: vllm needs a CUDA GPU", "use infer_backend: hf on this machine")
    return vllm


class _Ticket(Handle):
    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()


class VllmEngine(Engine):
    def __init__(self, cfg: RunConfig, *, max_queue: int = 64) -> None:
        vllm = require_vllm()
        self._vllm = vllm
        self.tokenizer, self.template, _ = build_tokenizer_and_template(cfg)
        adapters = cfg.model.adapter_name_or_path or []
        self.llm = vllm.LLM(
            model=resolve_model(cfg.model.model_name_or_path).path,
            dtype="auto" if cfg.model.infer_dtype == "auto" else cfg.model.infer_dtype,
            enable_lora=bool(adapters),
            trust_remote_code=cfg.model.trust_remote_code,
        )
        self._lora = None
        if adapters:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest("adapter", 1, adapters[0])
        self.model_name = cfg.model.model_name_or_path
        self.context_len = int(self.llm.llm_engine.model_config.max_model_len)
        self.defaults = SamplingParams.from_config(cfg.generate)
        self._stop = list(self.template.stop_token_strings(self.tokenizer))
        self._stop_ids = list(self.template.eot_token_ids(self.tokenizer))
        self._queue: queue.Queue[tuple[list[int], SamplingParams, Sink, _Ticket]] = queue.Queue(max_queue)
        threading.Thread(target=self._run, name="lmforge-vllm", daemon=True).start()

    def submit(self, prompt_ids: list[int], params: SamplingParams, sink: Sink) -> Handle:
        ticket = _Ticket()
        try:
            self._queue.put_nowait((list(prompt_ids), params, sink, ticket))
        except queue.Full:
            raise EngineBusyError("server busy: the request queue is full", "retry later") from None
        return ticket

    def _params(self, p: SamplingParams) -> Any:
        return self._vllm.SamplingParams(
            max_tokens=p.max_new_tokens,
            temperature=0.0 if p.greedy else p.temperature,
            top_p=p.top_p,
            top_k=p.top_k if p.top_k > 0 else -1,
            repetition_penalty=p.repetition_penalty,
            presence_penalty=p.presence_penalty,
            frequency_penalty=p.frequency_penalty,
            stop=self._stop + list(p.stop),
            stop_token_ids=self._stop_ids,
            seed=p.seed,
            skip_special_tokens=p.skip_special_tokens,
        )

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [item for item in batch if not item[3].cancelled.is_set()]
            if not batch:
                continue
            try:
                outputs = self.llm.generate(
                    [{"prompt_token_ids": ids} for ids, *_ in batch],
                    [self._params(p) for _, p, *_ in batch],
                    lora_request=self._lora,
                    use_tqdm=False,
                )
            except Exception as err:  # report to every waiting client, keep serving
                for ids, _, sink, _ in batch:
                    sink(GenerationEvent("", [], "error", len(ids), error=str(err)))
                continue
            for (ids, _, sink, _), out in zip(batch, outputs, strict=True):
                answer = out.outputs[0]
                reason = "length" if answer.finish_reason == "length" else "stop"
                tokens = list(answer.token_ids)
                sink(GenerationEvent(answer.text, tokens, reason, len(ids), len(tokens)))
