"""Rendering the records the checks look at: a fixed sample, each turned into template turns.

The checks render canonical records themselves (``Template.encode_turns``) and label them with the
data pipeline's own rule (``processors.encode_supervised``), so they run before tokenization and
any weights, and judge the same ids and labels training will see.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lmforge.data.templates import Template, encode, fill, split_system
from lmforge.errors import LmforgeError

SAMPLE_SIZE = 1000
PROBE_SYSTEM = "You are a careful assistant."
PROBE: list[dict[str, Any]] = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome."},
]

Pairs = list[tuple[list[int], list[int]]]


@dataclass
class Rendered:
    name: str  # "sample 12" or "probe"
    messages: list[dict[str, Any]]
    system: str | None
    tools: Any
    pairs: Pairs

    @property
    def length(self) -> int:
        return sum(len(p) + len(r) for p, r in self.pairs)


def pick_records(samples: Iterable[dict[str, Any]] | None, size: int = SAMPLE_SIZE, seed: int = 0) -> list:
    """All records when there are at most ``size``, else a seeded sample (streams: the first ``size``)."""
    if samples is None:
        return []
    if hasattr(samples, "__len__") and hasattr(samples, "__getitem__"):
        n = len(samples)  # type: ignore[arg-type]
        if n <= size:
            return [(i, samples[i]) for i in range(n)]  # type: ignore[index]
        picked = sorted(random.Random(seed).sample(range(n), size))
        return [(i, samples[i]) for i in picked]  # type: ignore[index]
    return list(enumerate(itertools.islice(samples, size)))


def conversation(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages a record trains on; preference records add their chosen answer."""
    messages = list(record.get("messages") or [])
    chosen = record.get("chosen")
    if isinstance(chosen, dict) and chosen.get("content") is not None:
        messages.append({"role": "assistant", **chosen})
    return messages


def render_records(
    records: list, template: Template, tokenizer: Any, default_system: str | None
) -> tuple[list[Rendered], list[str]]:
    """Rendered conversations and, separately, the records the template cannot render."""
    rendered, failures = [], []
    for index, record in records:
        messages = conversation(record)
        if not messages:  # stage pt text: no template involved
            continue
        system, messages = split_system(messages, record.get("system") or default_system)
        try:
            pairs = template.encode_turns(tokenizer, messages, system=system, tools=record.get("tools"))
        except LmforgeError as err:
            failures.append(f"sample {index}: {err}")
            continue
        rendered.append(Rendered(f"sample {index}", messages, system, record.get("tools"), pairs))
    return rendered, failures


def render_probe(template: Template, tokenizer: Any, system: str | None = PROBE_SYSTEM) -> Rendered:
    return Rendered("probe", PROBE, system, None, template.encode_turns(tokenizer, PROBE, system=system))


@dataclass(frozen=True)
class EndOfTurn:
    """The template's end-of-turn ids and how many tokens may follow them in a turn (chatml: "\\n")."""

    text: str
    ids: list[int]
    tail: int  # tokens after the end-of-turn inside the turn suffix; -1: suffix lacks it

    @classmethod
    def of(cls, template: Template, tokenizer: Any) -> EndOfTurn:
        text = fill(template.end_of_turn, tokenizer)
        suffix = template.turn_suffix(tokenizer)
        tail = len(encode(tokenizer, suffix.split(text, 1)[1])) if text and text in suffix else -1
        return cls(text, encode(tokenizer, text), tail)

    def position(self, ids: list[int]) -> int | None:
        """Where the end-of-turn starts in the last tokens of ``ids``, or None when it is not there."""
        if not self.ids:
            return None
        width = len(self.ids)
        lowest = max(len(ids) - width - max(self.tail, 0), 0)
        for start in range(len(ids) - width, lowest - 1, -1):
            if ids[start : start + width] == self.ids:
                return start
        return None
