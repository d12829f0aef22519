"""Findings of the pre-flight checks: what each says, how it is printed, saved and enforced.

A finding is one verdict (ok / warning / error) with the fix a user can apply. The report is
data (``to_dict`` → ``template_checks.json`` next to the run's other artifacts), printed as one
rich table, and enforced per ``data.template_checks``: ``strict`` stops the run on an error,
``warn`` only prints, ``off`` never runs the checks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from lmforge.errors import LmforgeError

Level = Literal["ok", "warning", "error"]
REPORT_FILE = "template_checks.json"
_STYLE = {"ok": "green", "warning": "yellow", "error": "bold red"}


@dataclass
class Finding:
    check: str  # stable id, e.g. "stop_words_are_tokens"
    title: str  # what was checked, in words
    level: Level
    message: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    template: str
    mode: str = "strict"
    samples_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "mode": self.mode,
            "samples_checked": self.samples_checked,
            "passed": self.passed,
            "findings": [asdict(f) for f in self.findings],
        }


def write_report(report: Report, output_dir: str | Path) -> Path:
    """Save the report as ``output_dir/template_checks.json`` (the trainer calls this)."""
    path = Path(output_dir) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def render_table(findings: list[Finding], title: str = "lmforge doctor", console: Any = None) -> None:
    """One row per finding: check, verdict, what was found, how to fix it."""
    from rich.console import Console
    from rich.table import Table

    # Wide when not a terminal so logs and tests keep each message on one line.
    console = console or Console(width=None if _is_tty() else 220, soft_wrap=False)
    table = Table(title=title, show_lines=True, title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("finding", overflow="fold")
    table.add_column("fix", overflow="fold")
    for f in findings:
        table.add_row(f.title, f"[{_STYLE[f.level]}]{f.level}[/]", _plain(f.message), _plain(f.fix or "-"))
    console.print(table)


def enforce(report: Report, console: Any = None) -> None:
    """Apply ``data.template_checks``: print problems; in strict mode an error stops the run."""
    if report.mode == "off":
        return
    problems = [f for f in report.findings if f.level != "ok"]
    if problems:
        render_table(problems, title=f"template checks ({report.template})", console=console)
    if report.mode == "strict" and report.errors:
        first = report.errors[0]
        more = f" (+{len(report.errors) - 1} more, see the table above)" if len(report.errors) > 1 else ""
        raise LmforgeError(
            f"template check failed: {first.title}: {first.message}{more}",
            hint=f"{first.fix}; or set template_checks: warn to train anyway",
        )


def _plain(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _is_tty() -> bool:
    import sys

    return sys.stdout.isatty()
