"""Mixing several data sets: concat, interleave proportions, max_samples and the held-out split."""

from __future__ import annotations

from collections import Counter

import pytest

from lmforge.data.pipeline import load_records


@pytest.fixture
def two_sets(tmp_path, write_jsonl):
    for name in ("a", "b"):
        rows = [{"instruction": f"{name}{i}", "output": "x"} for i in range(1000)]
        write_jsonl(tmp_path / f"{name}.jsonl", rows)
    return f"{tmp_path / 'a.jsonl'},{tmp_path / 'b.jsonl'}"


def _sources(train) -> Counter[str]:
    return Counter(content[0] for content in (r["messages"][0]["content"] for r in train))


def test_concat_keeps_every_record_in_order(make_cfg, two_sets):
    train, evaluation = load_records(make_cfg(dataset=two_sets))
    assert len(train) == 2000 and evaluation is None
    assert train[0]["messages"][0]["content"] == "a0" and train[1000]["messages"][0]["content"] == "b0"


def test_interleave_under_follows_probabilities(make_cfg, two_sets):
    cfg = make_cfg(dataset=two_sets, mix_strategy="interleave_under", interleave_probs=[0.8, 0.2])
    train, _ = load_records(cfg)
    counts = _sources(train)
    assert counts["a"] == 1000  # stops when the first set (the likelier one) runs out
    assert counts["a"] / len(train) == pytest.approx(0.8, abs=0.03)


def test_interleave_over_repeats_until_every_set_is_seen(make_cfg, two_sets):
    cfg = make_cfg(dataset=two_sets, mix_strategy="interleave_over", interleave_probs=[0.7, 0.3])
    train, _ = load_records(cfg)
    counts = _sources(train)
    assert counts["b"] >= 1000 and counts["a"] > 1000  # b exhausted once; a repeated meanwhile
    assert counts["a"] / len(train) == pytest.approx(0.7, abs=0.03)


def test_max_samples_per_set_and_val_size(make_cfg, two_sets):
    train, evaluation = load_records(make_cfg(dataset=two_sets, max_samples=100, val_size=0.1))
    assert (len(train), len(evaluation)) == (180, 20)
    assert _sources(list(train) + list(evaluation)) == {"a": 100, "b": 100}
    train, evaluation = load_records(make_cfg(dataset=two_sets, max_samples=10, val_size=3))
    assert (len(train), len(evaluation)) == (17, 3)
