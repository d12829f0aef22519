"""Benchmark accuracies: per subject, per category and on average, as a table and as JSON files.

Category and average accuracies are over questions (micro averages, as LLaMA-Factory and the
MMLU paper report them), so a subject with more questions weighs more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmforge.errors import LmforgeError


@dataclass
class SubjectResult:
    key: str
    name: str
    category: str
    predictions: list[str]
    answers: list[str]

    @property
    def correct(self) -> int:
        return sum(p == a for p, a in zip(self.predictions, self.answers, strict=True))

    @property
    def accuracy(self) -> float:
        return 100 * self.correct / len(self.answers)


@dataclass
class EvalResults:
    task: str
    subjects: list[SubjectResult] = field(default_factory=list)

    def groups(self) -> dict[str, tuple[int, int]]:
        """(correct, questions) per category in first-seen order, then "Average" over all."""
        totals: dict[str, tuple[int, int]] = {}
        for s in self.subjects:
            right, seen = totals.get(s.category, (0, 0))
            totals[s.category] = (right + s.correct, seen + len(s.answers))
        totals["Average"] = (sum(s.correct for s in self.subjects), sum(len(s.answers) for s in self.subjects))
        return totals

    def scores(self) -> dict[str, Any]:
        """What scores.json holds: accuracies in percent, rounded to 2 decimals."""
        return {
            "task": self.task,
            "average": round(_pct(*self.groups()["Average"]), 2),
            "categories": {name: round(_pct(*c), 2) for name, c in self.groups().items() if name != "Average"},
            "subjects": {
                s.key: {
                    "name": s.name,
                    "category": s.category,
                    "questions": len(s.answers),
                    "accuracy": round(s.accuracy, 2),
                }
                for s in self.subjects
            },
        }

    def table(self) -> str:
        width = max([len(s.name) for s in self.subjects] + [len(c) for c in self.groups()] + [7])
        lines = [f"{'subject':<{width}}  {'category':<16} {'questions':>9} {'accuracy':>9}"]
        for s in self.subjects:
            lines.append(f"{s.name:<{width}}  {s.category:<16} {len(s.answers):>9} {s.accuracy:>9.2f}")
        lines.append("")
        for name, (right, seen) in self.groups().items():
            lines.append(f"{name:<{width}}  {'':<16} {seen:>9} {_pct(right, seen):>9.2f}")
        return "\n".join(lines)


def _pct(right: int, seen: int) -> float:
    return 100 * right / seen if seen else 0.0


def check_save_dir(save_dir: str | None, overwrite: bool) -> None:
    """Refuse a non-empty save_dir before any work (results are never mixed with older ones)."""
    if save_dir and Path(save_dir).exists():
        target = Path(save_dir)
        if not target.is_dir():
            raise LmforgeError(f"save_dir {target} is a file", "choose a folder for save_dir")
        if any(target.iterdir()) and not overwrite:
            raise LmforgeError(
                f"save_dir {target} is not empty; nothing was changed",
                "choose another save_dir, or set overwrite_output_dir: true",
            )


def save_results(results: EvalResults, save_dir: str) -> Path:
    """scores.json (accuracies), results.json (each question's predicted letter, LLaMA-Factory's
    shape: {subject: {"0": "A", ...}}) and results.log (the table)."""
    target = Path(save_dir)
    target.mkdir(parents=True, exist_ok=True)
    predictions = {s.key: {str(i): p for i, p in enumerate(s.predictions)} for s in results.subjects}
    _write(target / "scores.json", json.dumps(results.scores(), indent=2, ensure_ascii=False) + "\n")
    _write(target / "results.json", json.dumps(predictions, indent=2, ensure_ascii=False) + "\n")
    _write(target / "results.log", results.table() + "\n")
    return target


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
