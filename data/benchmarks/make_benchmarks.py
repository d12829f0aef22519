"""Writes the small benchmarks in this folder (run: python data/benchmarks/make_benchmarks.py).

Both are in LLaMA-Factory's evaluation layout, so `lmforge eval` reads them exactly as it reads the
real MMLU, C-Eval and CMMLU downloads:

- ``lmforge_mini``: MMLU style, English, CSVs without a header (question, A, B, C, D, answer);
- ``lmforge_mini_zh``: C-Eval style, Chinese, CSVs with a header (id, question, A-D, answer,
  explanation).

Questions are generated from the lists below with a fixed seed (reproducible, owing nothing to
other projects' data); the answer letters are balanced across A-D in every split. They are easy on
purpose: a small instruction-tuned model should beat chance, and the numbers are a smoke test of a
fine-tune, not a measure of knowledge.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPLITS = {"dev": 5, "val": 8, "test": 12}
LETTERS = "ABCD"

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "China": "Beijing", "Egypt": "Cairo", "Canada": "Ottawa", "Russia": "Moscow", "Greece": "Athens",
    "Portugal": "Lisbon", "Norway": "Oslo", "Sweden": "Stockholm", "Ireland": "Dublin", "Poland": "Warsaw",
    "Austria": "Vienna", "Kenya": "Nairobi", "Peru": "Lima", "Thailand": "Bangkok", "Cuba": "Havana",
    "Hungary": "Budapest", "Finland": "Helsinki", "Belgium": "Brussels", "Denmark": "Copenhagen",
    "Argentina": "Buenos Aires",
}  # fmt: skip
OPPOSITES = {
    "hot": "cold", "big": "small", "fast": "slow", "happy": "sad", "early": "late", "light": "dark",
    "open": "closed", "full": "empty", "hard": "soft", "high": "low", "old": "young", "rich": "poor",
    "strong": "weak", "wet": "dry", "long": "short", "near": "far", "loud": "quiet", "thick": "thin",
    "clean": "dirty", "true": "false", "win": "lose", "push": "pull", "up": "down", "first": "last",
    "inside": "outside",
}  # fmt: skip
KINDS = {
    "fruit": ["apple", "banana", "cherry", "grape", "mango", "pear", "plum", "peach", "lemon", "orange"],
    "animal": ["dog", "horse", "tiger", "rabbit", "sheep", "eagle", "whale", "mouse", "lion", "goat"],
    "colour": ["red", "blue", "green", "yellow", "purple", "brown", "white", "black", "pink", "grey"],
    "metal": ["iron", "copper", "gold", "silver", "tin", "lead", "zinc", "nickel", "aluminium", "steel"],
    "vehicle": ["car", "bus", "train", "bicycle", "truck", "boat", "plane", "tram", "van", "scooter"],
}
KINDS_ZH = {
    "水果": ["苹果", "香蕉", "葡萄", "西瓜", "桃子", "梨", "橙子", "草莓", "芒果", "樱桃"],
    "动物": ["老虎", "狮子", "熊猫", "兔子", "大象", "猴子", "马", "羊", "狗", "猫"],
    "颜色": ["红色", "蓝色", "绿色", "黄色", "紫色", "白色", "黑色", "灰色", "粉色", "棕色"],
    "交通工具": ["汽车", "火车", "飞机", "轮船", "自行车", "公交车", "地铁", "卡车", "摩托车", "出租车"],
}
NUMBERS_ZH = "零一二三四五六七八九十"


def arithmetic(rng: random.Random) -> tuple[str, str, list[str]]:
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    if rng.random() < 0.5:
        question, right = f"What is {a} + {b}?", a + b
    else:
        a, b = max(a, b), min(a, b)
        question, right = f"What is {a} - {b}?", a - b
    wrong = rng.sample([n for n in range(max(0, right - 9), right + 10) if n != right], 3)
    return question, str(right), [str(n) for n in wrong]


def capitals(rng: random.Random) -> tuple[str, str, list[str]]:
    country = rng.choice(sorted(CAPITALS))
    wrong = rng.sample([c for k, c in CAPITALS.items() if k != country], 3)
    return f"What is the capital city of {country}?", CAPITALS[country], wrong


def opposites(rng: random.Random) -> tuple[str, str, list[str]]:
    word = rng.choice(sorted(OPPOSITES))
    wrong = rng.sample([o for w, o in OPPOSITES.items() if w != word], 3)
    return f"Which word means the opposite of '{word}'?", OPPOSITES[word], wrong


def kinds(rng: random.Random) -> tuple[str, str, list[str]]:
    kind = rng.choice(sorted(KINDS))
    others = [w for k, words in KINDS.items() if k != kind for w in words]
    return f"Which of these is a {kind}?", rng.choice(KINDS[kind]), rng.sample(others, 3)


def arithmetic_zh(rng: random.Random) -> tuple[str, str, list[str]]:
    a, b = rng.randint(1, 5), rng.randint(1, 5)
    wrong = rng.sample([n for n in range(0, 11) if n != a + b], 3)
    return f"{NUMBERS_ZH[a]}加{NUMBERS_ZH[b]}等于多少？", NUMBERS_ZH[a + b], [NUMBERS_ZH[n] for n in wrong]


def kinds_zh(rng: random.Random) -> tuple[str, str, list[str]]:
    kind = rng.choice(sorted(KINDS_ZH))
    others = [w for k, words in KINDS_ZH.items() if k != kind for w in words]
    return f"下列哪一项是{kind}？", rng.choice(KINDS_ZH[kind]), rng.sample(others, 3)


Maker = Callable[[random.Random], tuple[str, str, list[str]]]
BENCHMARKS: dict[str, dict[str, tuple[str, str, Maker]]] = {
    "lmforge_mini": {
        "elementary_arithmetic": ("elementary arithmetic", "STEM", arithmetic),
        "world_capitals": ("world capitals", "Social Sciences", capitals),
        "word_opposites": ("word opposites", "Humanities", opposites),
        "everyday_things": ("everyday things", "Other", kinds),
    },
    "lmforge_mini_zh": {
        "elementary_arithmetic": ("小学算术", "STEM", arithmetic_zh),
        "everyday_things": ("日常常识", "Other", kinds_zh),
    },
}


def questions(maker: Maker, count: int, rng: random.Random, seen: set[str]) -> list[list[str]]:
    """``count`` rows (question, A, B, C, D, answer), none repeated in a subject, letters balanced."""
    letters = [LETTERS[i % 4] for i in range(count)]
    rng.shuffle(letters)
    rows = []
    for letter in letters:
        question, right, wrong = maker(rng)
        while f"{question} {right}" in seen:
            question, right, wrong = maker(rng)
        seen.add(f"{question} {right}")
        options = list(wrong)
        options.insert(LETTERS.index(letter), right)
        rows.append([question, *options, letter])
    return rows


def write(benchmark: str, header: bool) -> None:
    root = HERE / benchmark
    rng = random.Random(f"lmforge-{benchmark}")
    mapping = {key: {"name": name, "category": category} for key, (name, category, _) in BENCHMARKS[benchmark].items()}
    root.mkdir(exist_ok=True)
    (root / "mapping.json").write_text(json.dumps(mapping, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for key, (_, _, maker) in BENCHMARKS[benchmark].items():
        seen: set[str] = set()
        for split, count in SPLITS.items():
            path = root / "data" / split / f"{key}_{split}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8", newline="") as handle:
                out = csv.writer(handle, lineterminator="\n")
                rows = questions(maker, count, rng, seen)
                if header:
                    out.writerow(["id", "question", "A", "B", "C", "D", "answer", "explanation"])
                    rows = [[str(i), *row, ""] for i, row in enumerate(rows)]
                out.writerows(rows)


if __name__ == "__main__":
    write("lmforge_mini", header=False)
    write("lmforge_mini_zh", header=True)
