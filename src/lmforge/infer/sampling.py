"""Choosing the next token of every row in a batch, each with its own settings.

Greedy rows share one vectorised argmax; sampled rows are processed one by one in transformers'
order (repetition penalty, temperature, top-k, top-p) so a request samples the same distribution
as ``model.generate`` would give it alone.
"""

from __future__ import annotations

import torch

from lmforge.infer.params import SamplingParams


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """transformers' rule: divide positive logits of seen tokens by the penalty, multiply negative ones."""
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    scores = logits.gather(-1, seen)
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits.scatter(-1, seen, scores)


def filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Mask (to -inf) tokens outside the top-k and outside the smallest set holding top_p mass."""
    if 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k).values[..., -1, None]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=False)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cumulative <= (1 - top_p)
        drop_sorted[..., -1:] = False  # always keep the most likely token
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token(
    logits: torch.Tensor,
    params: SamplingParams,
    seen: torch.Tensor,
    generator: torch.Generator | None = None,
) -> int:
    """The next token for one row (``logits``: [vocab] float32; ``seen``: prompt + answer ids)."""
    logits = apply_repetition_penalty(logits.float(), seen, params.repetition_penalty)
    if params.greedy:
        return int(logits.argmax())
    logits = filter_top_k_top_p(logits / params.temperature, params.top_k, params.top_p)
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def next_tokens(
    logits: torch.Tensor,
    params: list[SamplingParams],
    seen: list[torch.Tensor],
    generators: list[torch.Generator | None],
) -> list[int]:
    """Next tokens for a batch (``logits``: [batch, vocab])."""
    plain = [i for i, p in enumerate(params) if p.greedy and p.repetition_penalty == 1.0]
    chosen: dict[int, int] = {}
    if plain:
        picks = logits[plain].argmax(-1).tolist()
        chosen.update(zip(plain, picks, strict=True))
    for i, p in enumerate(params):
        if i not in chosen:
            chosen[i] = next_token(logits[i], p, seen[i], generators[i])
    return [chosen[i] for i in range(len(params))]
