"""The doctor checks tool data (issue 14, item 3): on ``template: auto`` with a chat template that
drops tools, the tool records fail "samples render" with the template that can; on chatml (which
renders them in LLaMA-Factory's default tool format) they render and nothing is an error."""

from __future__ import annotations

from pathlib import Path

from lmforge.config import build_config
from lmforge.data.pipeline import load_records
from lmforge.data.templates import get_template
from lmforge.doctor import run_template_checks

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def _report(tokenizer, template_name: str):
    cfg = build_config(
        {
            "model_name_or_path": "smollm2-135m-instruct", "output_dir": "unused", "template": template_name,
            "dataset": "glaive_toolcall_demo", "dataset_dir": str(DATA_DIR), "cutoff_len": 1024,
        }
    )  # fmt: skip
    train, _ = load_records(cfg)
    return run_template_checks(cfg, tokenizer, get_template(template_name, tokenizer), train)


def test_doctor_reports_tool_data_that_auto_would_drop(tokenizer):
    report = _report(tokenizer, "auto")
    (finding,) = [f for f in report.findings if f.check == "samples_render"]
    assert finding.level == "error"
    assert finding.message.startswith("5 of 6 records cannot be rendered; first: sample 0: template: auto: the chat")
    assert "does not render tools, so the tool schemas would vanish from the prompt" in finding.message
    assert "set template: chatml" in finding.message


def test_doctor_passes_tool_data_on_chatml(tokenizer):
    report = _report(tokenizer, "chatml")
    assert not report.errors
    assert report.samples_checked == 6
