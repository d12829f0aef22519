"""Rollouts: answers sampled from the live policy, batched, with the KV cache.

The inference engine's own step loop (infer/scheduler.py) runs on a background thread and takes
requests as they arrive, so which prompts share a forward pass depends on timing; a rollout needs
the same answers on every run of the same step (exact resume). So this is the engine's loop without
the thread: the same pieces (``infer.batch.prefill_inputs`` left-padded prefill into a
``DynamicCache``, ``infer.batch.Batch`` one-token decode steps that drop finished rows, and
``infer.sampling.next_tokens`` with each row's seeded generator), run synchronously on the policy
the Trainer is training — unwrapped, adapters live, no copy. Each row's generator is seeded from
(seed, step, row), so a step samples the same answers however the run got there.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

from lmforge.infer.batch import Batch, prefill_inputs
from lmforge.infer.params import SamplingParams
from lmforge.infer.sampling import next_tokens


def row_seed(seed: int, step: int, row: int) -> int:
    return (seed * 1_000_003 + step * 65_537 + row) % (2**63 - 1)


@torch.no_grad()
def sample_answers(
    model: Any,
    prompts: list[list[int]],
    params: SamplingParams,
    *,
    eos_ids: set[int],
    pad_id: int,
    seeds: list[int],
    context_len: int,
) -> list[list[int]]:
    """One answer per prompt: the generated ids, ending with the stop token when one was sampled
    (at most ``params.max_new_tokens``; prompt + answer within ``context_len``).

    ``model`` must be in eval mode (no dropout); its weights are used as they are now.
    """
    device = next(model.parameters()).device
    generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    answers: list[list[int]] = [[] for _ in prompts]
    inputs = prefill_inputs(prompts, pad_id, device)
    cache = DynamicCache()
    out = model(**inputs, past_key_values=cache, use_cache=True, logits_to_keep=1)
    batch = Batch(list(range(len(prompts))), cache, inputs["attention_mask"], torch.empty(0, dtype=torch.long))
    logits = out.logits[:, -1]
    while True:
        rows = batch.requests
        seen = [_seen(prompts[r], answers[r], params, device) for r in rows]
        tokens = next_tokens(logits.float(), [params] * len(rows), seen, [generators[r] for r in rows])
        keep = []
        for i, (row, token) in enumerate(zip(rows, tokens, strict=True)):
            answers[row].append(token)
            total = len(prompts[row]) + len(answers[row])
            if token not in eos_ids and len(answers[row]) < params.max_new_tokens and total < context_len:
                keep.append(i)
        batch.pending = torch.tensor(tokens, dtype=torch.long, device=device)
        if len(keep) < len(batch):
            batch.select(keep)
        if len(batch) == 0:
            return answers
        logits = model(**batch.decode_inputs()).logits[:, -1]


def _seen(prompt: list[int], answer: list[int], params: SamplingParams, device: torch.device) -> torch.Tensor:
    """Prompt + answer ids for the repetition penalty (empty when it is off), as the engine does."""
    if params.repetition_penalty == 1.0:
        return torch.empty(0, dtype=torch.long, device=device)
    return torch.tensor(prompt + answer, dtype=torch.long, device=device)
