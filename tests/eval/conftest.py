"""Helpers for the evaluation tests: small benchmarks written in LLaMA-Factory's layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "data" / "benchmarks"


def write_benchmark(root: Path, subjects: dict[str, dict[str, list[list[str]]]], header: bool = False) -> Path:
    """``subjects`` = {subject: {folder: rows}}; returns the task_dir holding ``root.name``."""
    mapping = {key: {"name": key.replace("_", " "), "category": "Other"} for key in subjects}
    root.mkdir(parents=True)
    (root / "mapping.json").write_text(json.dumps(mapping))
    for key, splits in subjects.items():
        for folder, rows in splits.items():
            path = root / "data" / folder / f"{key}_{folder}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="") as handle:
                out = csv.writer(handle)
                if header:
                    out.writerow(["id", "question", "A", "B", "C", "D", "answer"])
                out.writerows([[str(i), *r] for i, r in enumerate(rows)] if header else rows)
    return root.parent
