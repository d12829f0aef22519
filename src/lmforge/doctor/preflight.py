"""The trainer's entry to the template checks: sample the records, check, save, enforce.

Runs after tokenization and before the model loads. Costs about a second for 1000 records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmforge.doctor.checks import run_template_checks
from lmforge.doctor.report import Report, enforce, write_report


def preflight(
    cfg: Any, tokenizer: Any, template: Any, output_dir: str | Path, own_chat_template: str | None = None
) -> Report:
    """Check, write ``output_dir/template_checks.json``, print problems, raise in strict mode.

    ``own_chat_template``: the model's chat template as loaded, when the caller has already
    replaced ``tokenizer.chat_template`` with the training one (else there is nothing to compare).
    """
    if cfg.data.template_checks == "off":
        return Report(template=template.name, mode="off")
    from lmforge.data.pipeline import load_records

    train, _ = load_records(cfg)
    report = run_template_checks(cfg, tokenizer, template, train, own_chat_template=own_chat_template)
    write_report(report, output_dir)
    enforce(report)
    return report
