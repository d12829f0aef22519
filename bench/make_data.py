"""Write a fixed alpaca-format data set for the benchmarks when data/alpaca_demo.json is absent.

Deterministic (seeded): 400 records whose rendered lengths spread from ~30 to ~900 tokens, so
cutoff_len 512 truncates some, padding matters, and length grouping/packing have something to do.
Writes bench/data/alpaca_bench.json and bench/data/dataset_info.json (LLaMA-Factory's schema).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent / "data"
WORDS = (
    "the model data training learning language token sequence batch gradient loss adapter rank "
    "layer attention weight value query key memory speed step epoch sample record answer question "
    "system user assistant template prompt response length cutoff packing padding optimizer rate "
    "schedule warmup decay evaluation metric accuracy throughput latency cpu core thread process "
    "river mountain city garden music history science recipe travel weather animal planet ocean"
).split()
TASKS = [
    "Explain {}.",
    "Summarize the following text about {}.",
    "Write a short story about {}.",
    "List the steps to improve {}.",
    "Translate this sentence about {} into plain English.",
    "Give three facts about {}.",
    "Describe how {} works.",
    "Compare {} with its alternatives.",
]


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(sentence(rng) for _ in range(sentences))


def make_records(count: int = 400, seed: int = 1234) -> list[dict[str, str]]:
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        topic = " ".join(rng.sample(WORDS, 2))
        size = rng.choice([1, 2, 3, 5, 8, 13, 21, 34])  # output sentences: mixed lengths
        records.append(
            {
                "instruction": rng.choice(TASKS).format(topic),
                "input": paragraph(rng, rng.randint(1, 4)) if rng.random() < 0.4 else "",
                "output": paragraph(rng, size),
            }
        )
    return records


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    (HERE / "alpaca_bench.json").write_text(json.dumps(make_records(), indent=1) + "\n", encoding="utf-8")
    info = {"alpaca_bench": {"file_name": "alpaca_bench.json"}}
    (HERE / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'alpaca_bench.json'}")


if __name__ == "__main__":
    main()
