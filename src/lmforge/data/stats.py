"""What the data looks like once tokenized: lengths, what cutoff_len cuts, and what was dropped and why.

The report travels with the tokenized cache (a JSON file), so `lmforge data` and the training log can
show it without re-tokenizing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class LengthStats:
    """Token lengths of the samples before packing (``full`` = before cutoff_len truncation)."""

    count: int = 0
    p50: int = 0
    p95: int = 0
    max: int = 0
    full_max: int = 0
    truncated: int = 0  # samples longer than cutoff_len
    truncated_share: float = 0.0
    total_tokens: int = 0
    trained_tokens: int = 0


@dataclass
class DataReport:
    """Everything a user needs to trust the data: counts per set, drops with reasons, lengths, cache."""

    records: dict[str, int] = field(default_factory=dict)  # per data set name, after conversion
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count
    train: LengthStats = field(default_factory=LengthStats)
    eval: LengthStats | None = None
    num_train_rows: int | None = None  # rows after packing
    num_eval_rows: int | None = None
    packing: str = "off"  # off | packing | neat_packing
    cache_hit: bool = False
    cache_path: str | None = None
    fingerprint: str | None = None
    streamed: bool = False  # streaming: true — tokenized on the fly, never cached

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataReport:
        data = dict(data)
        data["train"] = LengthStats(**data["train"])
        data["eval"] = LengthStats(**data["eval"]) if data.get("eval") else None
        return cls(**data)

    def lines(self) -> list[str]:
        """A short human summary (one fact per line)."""
        out = [f"records: {', '.join(f'{k} {v}' for k, v in self.records.items()) or 'none'}"]
        if self.dropped:
            out.append("dropped: " + ", ".join(f"{n} ({reason})" for reason, n in self.dropped.items()))
        for name, stats in (("train", self.train), ("eval", self.eval)):
            if stats is None or stats.count == 0:
                continue
            out.append(
                f"{name}: {stats.count} samples, tokens p50 {stats.p50} p95 {stats.p95} max {stats.max}"
                f" (longest before cutoff {stats.full_max}); cut by cutoff_len: {stats.truncated}"
                f" ({stats.truncated_share:.1%}); trained tokens {stats.trained_tokens}/{stats.total_tokens}"
            )
        if self.packing != "off":
            out.append(f"{self.packing}: {self.num_train_rows} train rows")
        if self.streamed:
            out.append("cache: none (streamed data is tokenized as it is read, never cached)")
        else:
            out.append(f"cache: {'hit' if self.cache_hit else 'built'} {self.cache_path or ''}".rstrip())
        return out


def percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile (an actual sample length, not an interpolation)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def length_stats(lengths: list[int], full_lengths: list[int], trained: list[int]) -> LengthStats:
    ordered = sorted(lengths)
    cut = sum(1 for n, full in zip(lengths, full_lengths, strict=True) if full > n)
    return LengthStats(
        count=len(lengths),
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        max=ordered[-1] if ordered else 0,
        full_max=max(full_lengths, default=0),
        truncated=cut,
        truncated_share=cut / len(lengths) if lengths else 0.0,
        total_tokens=sum(lengths),
        trained_tokens=sum(trained),
    )


def merge_drops(*counters: Counter[str]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counter in counters:
        total.update(counter)
    return dict(total.most_common())
