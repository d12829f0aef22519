"""Choosing the next token of every row in a batch, each with its own settings.

Greedy rows share one vectorised argmax; sampled rows are processed one by one in transformers'
order (repetition penalty, temperature, top-k, top-p) so a request samples the same distribution
as ``model.generate`` would give it alone. OpenAI's presence and frequency penalties (which
transformers lacks) come right after the repetition penalty, where vLLM applies them too.
"""

from __future__ import annotations

import torch

from lmforge.infer.params import SamplingParams, TokenLogprob


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """transformers' rule: divide positive logits of seen tokens by the penalty, multiply negative ones."""
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    scores = logits.gather(-1, seen)
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits.scatter(-1, seen, scores)


def apply_presence_frequency_penalty(
    logits: torch.Tensor, generated: torch.Tensor, presence: float, frequency: float
) -> torch.Tensor:
    """OpenAI's rule over the answer so far (not the prompt): ``logits[t] -= presence * (count[t] > 0)
    + frequency * count[t]``. 0 is neutral; negative values favour repeats. Rows of ``generated``
    ([n] or [rows, n]) count tokens for the matching rows of ``logits``."""
    if (presence == 0 and frequency == 0) or generated.numel() == 0:
        return logits
    counts = torch.zeros_like(logits).scatter_add_(-1, generated, torch.ones_like(generated, dtype=logits.dtype))
    return logits - presence * (counts > 0).to(logits.dtype) - frequency * counts


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
    generated: torch.Tensor | None = None,
) -> int:
    """The next token for one row (``logits``: [vocab] float32; ``seen``: prompt + answer ids;
    ``generated``: answer ids, needed only by the presence and frequency penalties)."""
    logits = apply_repetition_penalty(logits.float(), seen, params.repetition_penalty)
    if generated is not None:
        logits = apply_presence_frequency_penalty(logits, generated, params.presence_penalty, params.frequency_penalty)
    if params.greedy:
        return int(logits.argmax())
    logits = filter_top_k_top_p(logits / params.temperature, params.top_k, params.top_p)
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def token_logprob(logits: torch.Tensor, token: int, top: int) -> TokenLogprob:
    """``token``'s log probability under ``logits`` ([vocab], the model's raw output) and the ``top``
    likeliest tokens."""
    logprobs = logits.float().log_softmax(-1)
    best = logprobs.topk(top) if top > 0 else None
    pairs = list(zip(best.indices.tolist(), best.values.tolist())) if best is not None else []
    return TokenLogprob(token, float(logprobs[token]), pairs)


def next_tokens(
    logits: torch.Tensor,
    params: list[SamplingParams],
    seen: list[torch.Tensor],
    generators: list[torch.Generator | None],
    generated: list[torch.Tensor | None] | None = None,
) -> list[int]:
    """Next tokens for a batch (``logits``: [batch, vocab])."""
    generated = generated or [None] * len(params)
    plain = [i for i, p in enumerate(params) if p.greedy and not p.penalised]
    chosen: dict[int, int] = {}
    if plain:
        picks = logits[plain].argmax(-1).tolist()
        chosen.update(zip(plain, picks, strict=True))
    for i, p in enumerate(params):
        if i not in chosen:
            chosen[i] = next_token(logits[i], p, seen[i], generators[i], generated[i])
    return [chosen[i] for i in range(len(params))]
