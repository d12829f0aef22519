"""Cutting one encoded conversation into its segments: the fast path (asking the Rust encoding
which token holds each boundary character) equals the general path (every token's offsets)."""

from __future__ import annotations

import pytest

from lmforge.data.template_encoding import _cut, _cut_encoding

CASES = [
    ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "hello<|im_end|>\n"],
    ["hel", "lo world", "", "again"],  # "hello" straddles the first boundary; an empty segment
    ["tea 🍵", "🍵 and more", "日本", "語です"],  # multi-byte characters at boundaries
    ["", "starts empty", "x", ""],
    ["spaces   ", "   everywhere  ", "\n\n", "\nend"],
]


@pytest.mark.parametrize("texts", CASES)
def test_fast_cut_equals_general_cut(tokenizer, texts: list[str]) -> None:
    enc = tokenizer.backend_tokenizer.encode("".join(texts), add_special_tokens=False)
    expected = _cut(enc.ids, enc.offsets, texts)
    assert _cut_encoding(enc, texts) == expected
    assert [t for pair in expected for part in pair for t in part] == enc.ids
