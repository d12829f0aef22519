"""The Ollama Modelfile: its TEMPLATE, executed by Go's text/template (the engine Ollama renders
prompts with), gives exactly the text the training template renders, for every named template."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lmforge.data.templates import builtin_templates, fill
from lmforge.export.modelfile import render_modelfile

GO = shutil.which("go")
RENDERER = Path(__file__).with_name("gotemplate.go")
TWO_TURNS = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And 3+3?\nThink."},
    {"role": "assistant", "content": "6."},
]


def _template_text(modelfile: str) -> str:
    start = modelfile.index('TEMPLATE """') + len('TEMPLATE """')
    return modelfile[start : modelfile.index('"""\n', start)]


def _go_render(cases: list[dict], tmp_path: Path) -> list[str]:
    env = {**os.environ, "GOCACHE": os.environ.get("GOCACHE", str(Path.home() / ".cache" / "go-build")),
           "GOPATH": str(tmp_path / "gopath"), "GOFLAGS": "-mod=mod", "GO111MODULE": "off"}  # fmt: skip
    done = subprocess.run(
        [GO, "run", str(RENDERER)], input=json.dumps(cases), capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout)


def test_modelfile_names_the_gguf_and_each_stop_word(tokenizer) -> None:
    chatml = builtin_templates()["chatml"]
    text = render_modelfile(chatml, tokenizer, "model-f16.gguf")
    lines = text.splitlines()
    assert lines[1] == "FROM ./model-f16.gguf"
    assert [line for line in lines if line.startswith("PARAMETER")] == [
        'PARAMETER stop "<|im_end|>"',
        'PARAMETER stop "<|im_start|>"',
    ]
    assert not any(line.startswith("SYSTEM") for line in lines)  # chatml has no default system prompt
    qwen = render_modelfile(builtin_templates()["qwen"], tokenizer, "m.gguf")
    assert 'SYSTEM """You are Qwen, created by Alibaba Cloud. You are a helpful assistant."""' in qwen


@pytest.mark.skipif(GO is None, reason="Go is not installed (make test installs Debian's golang when root)")
def test_go_rendered_template_equals_training_text_for_every_named_template(tokenizer, tmp_path: Path) -> None:
    cases, expected, names = [], [], []
    for name, template in builtin_templates().items():
        go = _template_text(render_modelfile(template, tokenizer, "m.gguf"))
        for system in ("You are terse.", None):
            default = system or template.default_system or ""
            pairs, rest = template.render_segments(tokenizer, TWO_TURNS, system=system)
            cases.append({"template": go, "system": default, "messages": TWO_TURNS})
            expected.append("".join(p + r for p, r in pairs) + rest)
            # A generation prompt: the history, the last user turn, then the assistant header.
            pairs, rest = template.render_segments(tokenizer, TWO_TURNS[:3], system=system)
            cases.append({"template": go, "system": default, "messages": TWO_TURNS[:3]})
            expected.append("".join(p + r for p, r in pairs) + rest + fill(template.assistant_header, tokenizer))
            names += [f"{name}/{system}/two-turns", f"{name}/{system}/prompt"]
    rendered = _go_render(cases, tmp_path)
    mismatched = [n for n, got, want in zip(names, rendered, expected) if got != want]
    assert not mismatched, [(n, r, e) for n, r, e in zip(names, rendered, expected) if r != e][:2]
    assert rendered[names.index("chatml/You are terse./two-turns")] == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4.<|im_end|>\n<|im_start|>user\nAnd 3+3?\nThink.<|im_end|>\n"
        "<|im_start|>assistant\n6.<|im_end|>\n"
    )
