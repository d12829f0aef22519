"""Template doctor on the real SmolLM2 tokenizer: each check catches its failure and names the fix."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.doctor import enforce, run_template_checks, write_report
from lmforge.errors import LmforgeError

REPO = Path(__file__).resolve().parents[2]
SMOLLM_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def _record(question: str, answer: str, system: str | None = None) -> dict:
    return {
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "system": system, "tools": None, "chosen": None, "rejected": None, "kto_label": None, "text": None,
    }  # fmt: skip


RECORDS = [_record(f"Question {i}?", f"Answer {i}.", "Be brief." if i % 2 else None) for i in range(10)]


def _cfg(**flat):
    return build_config({"model_name_or_path": "smollm2-135m-instruct", "output_dir": "unused", **flat})


def _check(report, check_id):
    (finding,) = [f for f in report.findings if f.check == check_id]
    return finding


def test_llama3_on_smollm2_is_refused_naming_eot_id(tokenizer):
    report = run_template_checks(_cfg(template="llama3"), tokenizer, get_template("llama3", tokenizer), RECORDS)
    stop = _check(report, "stop_words_are_tokens")
    assert stop.level == "error"
    assert "'<|eot_id|>'" in stop.message and "does not exist in this tokenizer" in stop.message
    assert stop.details["suggested"] == ["chatml", "qwen", "auto"]
    assert stop.fix == "use a template that fits this tokenizer: chatml, qwen, auto"
    assert _check(report, "end_of_turn_trained").level == "error"
    with pytest.raises(LmforgeError, match=r"template check failed: .*<\|eot_id\|>.*chatml, qwen, auto"):
        enforce(report)


def test_custom_template_without_end_of_turn_fails_end_of_turn_trained(tokenizer, tmp_path):
    path = tmp_path / "no_eot.yaml"
    path.write_text(
        'system: "<|im_start|>system\\n{{content}}<|im_end|>\\n"\n'
        'user: "<|im_start|>user\\n{{content}}<|im_end|>\\n"\n'
        'assistant_header: "<|im_start|>assistant\\n"\n'
        'assistant: "{{content}}\\n"\n'
        'stop_words: ["<|im_end|>"]\n'
    )
    template = get_template(str(path), tokenizer)
    report = run_template_checks(_cfg(template=str(path)), tokenizer, template, RECORDS)
    finding = _check(report, "end_of_turn_trained")
    assert finding.level == "error"
    assert finding.message.startswith(
        "template no_eot: 12 of 12 trained assistant turns do not end with the end-of-turn '<|im_end|>'"
    )  # 10 records + the 2-turn probe
    assert "end the template's `assistant` format with '<|im_end|>' after {{content}}" in finding.fix
    assert _check(report, "stop_words_are_tokens").level == "ok"


def test_chatml_reports_smollm2_default_system_prompt_as_warning(tokenizer):
    report = run_template_checks(_cfg(template="chatml"), tokenizer, get_template("chatml", tokenizer), RECORDS)
    agree = [f for f in report.findings if f.check == "agrees_with_tokenizer"]
    assert [f.level for f in agree] == ["ok", "warning"]
    assert agree[1].details["tokenizer_default_system"] == SMOLLM_SYSTEM
    assert f"adds the default system prompt '{SMOLLM_SYSTEM}', template chatml adds none" in agree[1].message
    assert "served models use it" in agree[1].message
    assert agree[1].fix == f"set default_system: '{SMOLLM_SYSTEM}' to train with it, or use template: auto"
    assert report.passed
    enforce(report)  # warnings print, nothing raises


def test_chatml_with_smollm2_default_system_agrees(tokenizer):
    template = get_template("chatml", tokenizer, default_system=SMOLLM_SYSTEM)
    report = run_template_checks(_cfg(template="chatml", default_system=SMOLLM_SYSTEM), tokenizer, template, RECORDS)
    assert {f.level for f in report.findings if f.check == "agrees_with_tokenizer"} == {"ok"}


def test_auto_passes_clean(tokenizer):
    report = run_template_checks(_cfg(template="auto"), tokenizer, get_template("auto", tokenizer), RECORDS)
    assert [(f.check, f.level) for f in report.findings] == [
        ("end_of_turn_trained", "ok"),
        ("stop_words_are_tokens", "ok"),
        ("agrees_with_tokenizer", "ok"),
        ("prompt_boundary_stable", "ok"),
        ("truncation_keeps_end_of_turn", "ok"),
    ]
    assert report.samples_checked == 10


def test_llama3_prompt_boundary_differs_on_smollm2(tokenizer):
    report = run_template_checks(_cfg(template="llama3"), tokenizer, get_template("llama3", tokenizer), RECORDS[:1])
    finding = _check(report, "prompt_boundary_stable")
    assert finding.level == "warning"
    # "\n\n" after the header is two tokens before an answer, one token at the end of a prompt
    assert "training has [198, 198] '\\n\\n', generation has [1116] '\\n\\n'" in finding.message


def test_long_answers_get_truncation_warning_with_share_and_cutoff(tokenizer):
    template = get_template("auto", tokenizer)
    long_answer = " ".join(["word"] * 300)
    records = [_record(f"Q{i}", long_answer if i < 4 else "Short.") for i in range(20)]
    report = run_template_checks(_cfg(template="auto", cutoff_len=128), tokenizer, template, records)
    finding = _check(report, "truncation_keeps_end_of_turn")
    long_len = sum(len(p) + len(r) for p, r in template.encode_turns(tokenizer, records[0]["messages"]))
    suggested = math.ceil(long_len / 64) * 64
    assert finding.level == "warning"
    assert finding.message.startswith("4 of 20 samples (20.0%) lose their final end-of-turn to cutoff_len 128")
    assert finding.details["share"] == 0.2 and finding.details["suggested_cutoff_len"] == suggested == 384
    assert finding.fix.startswith("set cutoff_len: 384 (p95 of sample lengths")


def test_modes_and_json_report(tokenizer, tmp_path):
    template = get_template("llama3", tokenizer)
    off = run_template_checks(_cfg(template="llama3", template_checks="off"), tokenizer, template, RECORDS)
    assert off.findings == []
    warn = run_template_checks(_cfg(template="llama3", template_checks="warn"), tokenizer, template, RECORDS)
    enforce(warn)  # warn: errors print, the run goes on
    path = write_report(warn, tmp_path)
    saved = json.loads(path.read_text())
    assert path.name == "template_checks.json"
    assert saved["template"] == "llama3" and saved["mode"] == "warn" and saved["passed"] is False
    assert saved["samples_checked"] == 10
    assert {f["check"] for f in saved["findings"] if f["level"] == "error"} == {
        "end_of_turn_trained", "stop_words_are_tokens",
    }  # fmt: skip


# --- lmforge doctor ------------------------------------------------------------------------------
def _doctor(argv: list[str]) -> int:
    from lmforge.commands import doctor

    parser = argparse.ArgumentParser()
    doctor.register(parser.add_subparsers())
    args, extra = parser.parse_known_args(["doctor", *argv])
    args.overrides = extra
    return args.func(args)


@pytest.fixture()
def config_file(tmp_path, builtin_dir):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        f"model_name_or_path: {builtin_dir}\nstage: sft\ndataset: identity\ndataset_dir: {REPO / 'data'}\n"
        f"template: auto\ncutoff_len: 256\noutput_dir: {tmp_path / 'out'}\n"
    )
    return path


def test_doctor_passes_on_demo_config(config_file, capsys):
    assert _doctor([str(config_file)]) == 0
    out = capsys.readouterr().out
    assert "doctor: 0 error(s), 0 warning(s)" in out
    for row in ("config", "tokenizer", "template", "data", "end of turn is trained", "prompt boundary is stable"):
        assert row in out


def test_doctor_fails_on_wrong_template_with_check_and_fix(config_file, capsys, tmp_path):
    report = tmp_path / "doctor.json"
    assert _doctor([str(config_file), "template=llama3", "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert "stop words are tokens" in out and "use a template that fits this tokenizer: chatml, qwen, auto" in out
    assert "doctor: 2 error(s)" in out and "training would stop" in out
    assert "Traceback" not in out
    assert json.loads(report.read_text())["passed"] is False


def test_cli_doctor_reports_bad_config_key_without_traceback(config_file, capsys):
    from lmforge.cli import main

    assert main(["doctor", str(config_file), "templte=chatml"]) == 1
    out = capsys.readouterr()
    # the mistake is in the override, not in the YAML file
    assert "command line (templte=chatml): unknown key 'templte'" in out.out and "did you mean 'template'?" in out.out
    assert "doctor: 1 error(s)" in out.out
    assert "Traceback" not in out.out + out.err


# --- the trainer's entry -------------------------------------------------------------------------
def _train_cfg(tmp_path, **flat):
    return _cfg(dataset="identity", dataset_dir=str(REPO / "data"), output_dir=str(tmp_path), **flat)


def test_preflight_writes_report_and_warns_in_strict_mode(tokenizer, tmp_path):
    from lmforge.doctor import preflight

    report = preflight(_train_cfg(tmp_path, template="chatml"), tokenizer, get_template("chatml", tokenizer), tmp_path)
    assert report.passed and report.samples_checked == 68
    assert json.loads((tmp_path / "template_checks.json").read_text())["template"] == "chatml"


def test_preflight_strict_stops_on_error(tokenizer, tmp_path):
    from lmforge.doctor import preflight

    with pytest.raises(LmforgeError, match="stop words are tokens|end of turn is trained"):
        preflight(_train_cfg(tmp_path, template="llama3"), tokenizer, get_template("llama3", tokenizer), tmp_path)
    assert json.loads((tmp_path / "template_checks.json").read_text())["passed"] is False


def test_agreement_uses_own_template_after_the_training_one_replaced_it(tokenizer):
    import copy

    own = tokenizer.chat_template
    trained = copy.deepcopy(tokenizer)
    template = get_template("chatml", trained)
    trained.chat_template = template.chat_template_jinja(trained)
    cfg = _cfg(template="chatml")
    blind = run_template_checks(cfg, trained, template, RECORDS)
    assert _check(blind, "agrees_with_tokenizer").message.startswith("the tokenizer already carries the training")
    seeing = run_template_checks(cfg, trained, template, RECORDS, own_chat_template=own)
    agree = [f for f in seeing.findings if f.check == "agrees_with_tokenizer"]
    assert [f.level for f in agree] == ["ok", "warning"]
    assert agree[1].details["tokenizer_default_system"] == SMOLLM_SYSTEM
