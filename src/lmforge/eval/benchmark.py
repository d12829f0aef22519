"""Reading a multiple-choice benchmark in LLaMA-Factory's layout, straight from its CSVs.

``task_dir/<benchmark>/mapping.json`` maps each subject to ``{"name", "category"}``; the questions
live in ``data/<folder>/<subject>_<folder>.csv`` with folders ``dev`` (the few-shot pool), ``val``
and ``test``. MMLU's files have no header (question, A, B, C, D, answer); C-Eval's and CMMLU's
start with one naming those columns plus an id and, in C-Eval, an explanation: the header is
detected, not assumed. No loader script runs, so no user code runs.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from lmforge.errors import LmforgeError

CHOICES = ("A", "B", "C", "D")
COLUMNS = ("question", *CHOICES, "answer")
# Task names say "validation" (as Hugging Face splits do); the folders say "val".
SPLIT_FOLDERS = {"test": "test", "validation": "val", "val": "val", "dev": "dev", "train": "dev"}


@dataclass(frozen=True)
class Question:
    question: str
    options: tuple[str, str, str, str]
    answer: str  # one of CHOICES


@dataclass(frozen=True)
class Subject:
    key: str  # the file name stem, e.g. abstract_algebra
    name: str  # how prompts name it, e.g. "abstract algebra"
    category: str  # STEM, Social Sciences, Humanities, Other (or the benchmark's own)
    questions: list[Question]
    dev: list[Question]


def parse_task(task: str | None) -> tuple[str, str]:
    """``mmlu_test`` -> ("mmlu", "test"); the split is the part after the last underscore."""
    if not task:
        raise LmforgeError("lmforge eval needs a task", "set task: <benchmark>_<split>, e.g. mmlu_test")
    benchmark, _, split = task.rpartition("_")
    if not benchmark or split not in SPLIT_FOLDERS:
        raise LmforgeError(
            f"task {task!r} is not <benchmark>_<split>",
            f"end it with one of: {', '.join(s for s in SPLIT_FOLDERS if s != 'val')} (e.g. mmlu_test)",
        )
    return benchmark, SPLIT_FOLDERS[split]


def load_benchmark(task: str | None, task_dir: str, *, need_dev: bool) -> list[Subject]:
    """Every subject of the task's benchmark, with the requested split (and dev when few-shot)."""
    benchmark, folder = parse_task(task)
    root = Path(task_dir) / benchmark
    mapping = _read_mapping(root, benchmark, task_dir)
    subjects = []
    for key, info in mapping.items():
        questions = read_questions(_split_file(root, key, folder, task))
        dev = read_questions(_split_file(root, key, "dev", task, why="n_shot > 0 reads")) if need_dev else []
        if not questions:
            raise LmforgeError(f"{root / 'data' / folder / f'{key}_{folder}.csv'} has no questions")
        subjects.append(Subject(key, info["name"], info["category"], questions, dev))
    return subjects


def _read_mapping(root: Path, benchmark: str, task_dir: str) -> dict[str, dict[str, str]]:
    path = root / "mapping.json"
    if not path.is_file():
        found = sorted(p.parent.name for p in Path(task_dir).glob("*/mapping.json"))
        known = f"benchmarks in {task_dir}: {', '.join(found)}" if found else f"no benchmark in {task_dir}"
        raise LmforgeError(
            f"task benchmark {benchmark!r} not found: {path} does not exist ({known})",
            "set task_dir to the folder holding <benchmark>/mapping.json (the shipped one: data/benchmarks)",
        )
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise LmforgeError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}") from None
    if not isinstance(mapping, dict) or not mapping:
        raise LmforgeError(f'{path} must map each subject to {{"name": ..., "category": ...}}')
    for key, info in mapping.items():
        if not isinstance(info, dict) or not {"name", "category"} <= set(info):
            raise LmforgeError(
                f"{path}: subject {key!r} needs a name and a category",
                f'write "{key}": {{"name": "...", "category": "STEM"}}',
            )
    return mapping


def _split_file(root: Path, subject: str, folder: str, task: str | None, why: str = "the task reads") -> Path:
    path = root / "data" / folder / f"{subject}_{folder}.csv"
    if not path.is_file():
        raise LmforgeError(
            f"{path} is missing: {why} the {folder!r} split of subject {subject!r} (task {task})",
            f"add data/{folder}/{subject}_{folder}.csv, or choose a split the benchmark has",
        )
    return path


def read_questions(path: Path) -> list[Question]:
    """Rows of one CSV; a first row naming the columns (any case) is a header."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if not rows:
        return []
    lowered = [cell.strip().lower() for cell in rows[0]]
    wanted = [column.lower() for column in COLUMNS]
    if set(wanted) <= set(lowered):
        index = [lowered.index(column) for column in wanted]
        body, first_line = rows[1:], 2
    elif "question" in lowered or "answer" in lowered:
        missing = [c for c in COLUMNS if c.lower() not in lowered]
        raise LmforgeError(
            f"{path}: the header lacks the column(s) {', '.join(missing)}",
            "a header names question, A, B, C, D, answer (other columns are ignored)",
        )
    else:
        index, body, first_line = list(range(len(COLUMNS))), rows, 1
    questions = []
    for line, row in enumerate(body, start=first_line):
        if first_line == 1 and len(row) != len(COLUMNS):
            raise LmforgeError(
                f"{path}:{line}: {len(row)} columns, expected 6 (question, A, B, C, D, answer)",
                "write one question per row with four options and the answer letter, or add a header row",
            )
        if len(row) <= max(index):
            raise LmforgeError(f"{path}:{line}: {len(row)} columns, the header names {len(rows[0])}")
        question, a, b, c, d, answer = (row[i].strip() for i in index)
        if answer not in CHOICES:
            raise LmforgeError(
                f"{path}:{line}: answer {answer!r} is not one of A, B, C, D",
                "give the answer letter (a split without answers, like C-Eval's test, cannot be scored)",
            )
        questions.append(Question(question, (a, b, c, d), answer))
    return questions
