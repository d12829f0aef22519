"""Rendered text → token ids, cut back into the conversation's segments.

A conversation is encoded as one text (so tokens merge exactly as ``apply_chat_template`` would
make them) and cut into its (prompt, response) segments by character position: a token belongs
to the segment holding its last character. Batched, with the Rust tokenizer called directly, this
is most of preprocessing's time (docs/performance.md).
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any


def encode(tokenizer: Any, text: str) -> list[int]:
    """The one way text becomes ids here: no implicit bos/eos, formats say where they go."""
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


def encode_pairs(tokenizer: Any, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """Encode the whole conversation at once and cut it at the segment boundaries.

    Encoding each segment alone would tokenize turn boundaries differently from
    ``apply_chat_template`` (``"\\n\\n" + "###"`` merges differently than either side alone), so
    training would see ids a served model never does. A token that straddles a boundary goes to
    the segment holding its last character. Slow tokenizers (no offsets) fall back to segments.
    """
    return encode_pairs_batch(tokenizer, [pairs])[0]


def encode_pairs_batch(
    tokenizer: Any, conversations: list[list[tuple[str, str]]]
) -> list[list[tuple[list[int], list[int]]]]:
    """``encode_pairs`` for many conversations with one tokenizer call.

    One batched call lets the fast tokenizer encode the texts on all cores and pays the Python
    overhead of ``tokenizer(...)`` once per batch instead of once per record (preprocessing spent
    about half its time there). Segments are cut by bisecting the segment ends into the tokens'
    last-character offsets (non-decreasing), not by visiting every token.
    """
    segments = [[text for pair in pairs for text in pair] for pairs in conversations]
    if not getattr(tokenizer, "is_fast", False):
        out = []
        for texts in segments:
            ids = [encode(tokenizer, text) for text in texts]
            out.append([(ids[i], ids[i + 1]) for i in range(0, len(ids), 2)])
        return out
    # The Rust tokenizer directly: transformers' __call__ would convert every Encoding to Python
    # dicts (a third of preprocessing time) for the same ids and offsets.
    encodings = tokenizer.backend_tokenizer.encode_batch(
        ["".join(texts) for texts in segments], add_special_tokens=False
    )
    return [_cut_encoding(enc, texts) for enc, texts in zip(encodings, segments, strict=True)]


def _cut_encoding(enc: Any, texts: list[str]) -> list[tuple[list[int], list[int]]]:
    """``_cut`` without converting every token's offsets to Python: the Rust encoding says which
    token holds each segment's last character (two calls per boundary). The boundary rule is the
    same and is checked on both sides; anything unusual takes the general path."""
    ids = enc.ids
    ends = list(itertools.accumulate(len(text) for text in texts))
    cuts = [0]
    for end in ends[:-1]:
        token = enc.char_to_token(end - 1) if end > 0 else 0
        if token is None:
            return _cut(ids, enc.offsets, texts)
        if end > 0 and _last_char(enc.token_to_chars(token)) < end:
            token += 1  # the token ends inside this segment, so it belongs to it
        if token < len(ids) and _last_char(enc.token_to_chars(token)) < end:
            return _cut(ids, enc.offsets, texts)
        if (token > 0 and _last_char(enc.token_to_chars(token - 1)) >= end) or token < cuts[-1]:
            return _cut(ids, enc.offsets, texts)
        cuts.append(token)
    cuts.append(len(ids))
    parts = [ids[cuts[k] : cuts[k + 1]] for k in range(len(texts))]
    return [(parts[i], parts[i + 1]) for i in range(0, len(parts), 2)]


def _last_char(offset: tuple[int, int]) -> int:
    start, end = offset
    return max(start, end - 1)


def _cut(ids: list[int], offsets: list[tuple[int, int]], texts: list[str]) -> list[tuple[list[int], list[int]]]:
    """Split one conversation's ids into its segments: a token belongs to the segment holding its
    last character. Offsets are non-decreasing, so each boundary is a bisection (a few probes per
    segment); the boundary tokens are checked, and any disorder falls back to placing every token."""
    ends = list(itertools.accumulate(len(text) for text in texts))
    cuts = [0, *(bisect.bisect_left(offsets, end, key=_last_char) for end in ends[:-1]), len(ids)]
    if all(
        (c == 0 or _last_char(offsets[c - 1]) < end) and (c == len(ids) or _last_char(offsets[c]) >= end)
        for c, end in zip(cuts[1:-1], ends, strict=False)
    ):
        parts = [ids[cuts[k] : cuts[k + 1]] for k in range(len(texts))]
    else:  # offsets out of order (not seen with BPE tokenizers): place token by token
        parts = [[] for _ in texts]
        for token, offset in zip(ids, offsets, strict=True):
            parts[min(bisect.bisect_right(ends, _last_char(offset)), len(parts) - 1)].append(token)
    return [(parts[i], parts[i + 1]) for i in range(0, len(parts), 2)]
