"""Incremental detokenisation with stop words.

Streaming must never show text that a stop word later cuts off, nor half a UTF-8 character, so
text that could still become a stop word (or ends in U+FFFD) is held back until it is decided.
Decoding the whole answer each step costs O(n^2) characters but stays correct for tokenizers
whose pieces depend on their neighbours; answers are short next to the model's work per token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TextStream:
    """Turns a growing list of token ids into text deltas, stopping at the first stop word."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], skip_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = []
        self.emitted = 0  # characters of the decoded text already handed out
        self.text = ""  # decoded text so far, cut at a stop word once one is found
        self.stopped = False

    def push(self, token_id: int) -> str:
        """Add one token; return the text that is now safe to show (maybe empty)."""
        self.ids.append(token_id)
        self.text = self.tokenizer.decode(self.ids, skip_special_tokens=self.skip_special_tokens)
        cut = self._first_stop()
        if cut is not None:
            self.text = self.text[:cut]
            self.stopped = True
            return self._emit(len(self.text))
        if self.text.endswith("\ufffd"):
            return ""
        return self._emit(len(self.text) - self._held_back())

    def flush(self) -> str:
        """At the end of an answer: hand out what was held back (not a stop word after all)."""
        if self.text.endswith("\ufffd") and not self.stopped:
            self.text = self.text.rstrip("\ufffd")
        return self._emit(len(self.text))

    def _emit(self, upto: int) -> str:
        upto = max(upto, self.emitted)
        delta = self.text[self.emitted : upto]
        self.emitted = upto
        return delta

    def _first_stop(self) -> int | None:
        longest = max((len(s) for s in self.stop), default=0)
        start = max(0, self.emitted - longest)
        hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
        return min(hits) if hits else None

    def _held_back(self) -> int:
        """Length of the longest tail of the text that is a proper prefix of a stop word."""
        best = 0
        for word in self.stop:
            for size in range(min(len(word) - 1, len(self.text)), best, -1):
                if self.text.endswith(word[:size]):
                    best = size
                    break
        return best
