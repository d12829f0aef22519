"""OpenAI's two ``logprobs`` shapes, built from the engine's ``TokenLogprob`` entries.

Chat: ``{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}], "refusal": None}``.
Text completions (the legacy shape): ``{"tokens", "token_logprobs", "top_logprobs": [{token:
logprob}], "text_offset"}``. A token's text is its own decoding: one that ends inside a UTF-8
character shows U+FFFD, and ``bytes`` are that text's UTF-8, not the raw byte piece.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

from lmforge.infer.params import TokenLogprob


def chat_logprobs(tokenizer: Any, entries: list[TokenLogprob]) -> dict[str, Any]:
    content = [
        {**_token(tokenizer, e.token_id, e.logprob), "top_logprobs": [_token(tokenizer, i, p) for i, p in e.top]}
        for e in entries
    ]
    return {"content": content, "refusal": None}


def text_logprobs(tokenizer: Any, entries: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """``offset``: characters of the choice's text before these tokens (earlier stream chunks)."""
    tokens = [tokenizer.decode([e.token_id]) for e in entries]
    return {
        "tokens": tokens,
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [{tokenizer.decode([i]): p for i, p in e.top} for e in entries],
        "text_offset": list(accumulate((len(t) for t in tokens[:-1]), initial=offset)) if tokens else [],
    }


def _token(tokenizer: Any, token_id: int, logprob: float) -> dict[str, Any]:
    text = tokenizer.decode([token_id])
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}
