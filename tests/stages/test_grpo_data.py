"""Prompt rows for stage grpo (data/prompts.py): prompt-only records survive conversion, the last
answer becomes the reference, the prompt ids are the template's generation prompt and its text
re-tokenizes to them, and a prompt over cutoff_len is dropped and counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmforge.config import build_config
from lmforge.data.pipeline import build_datasets
from lmforge.models.tokenizer import build_tokenizer_and_template


def test_prompt_only_records_survive_and_the_last_answer_is_the_reference(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = [
        {"instruction": "Add 2 and 3.", "output": "5"},
        {"instruction": "Say hi."},  # prompt only
        {"instruction": "word " * 80, "output": "too long"},  # over cutoff_len: dropped, counted
    ]
    (tmp_path / "p.json").write_text(json.dumps(rows))
    talk = [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
                               {"from": "human", "value": "Bye?"}]}]  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(talk))
    info = {"p": {"file_name": "p.json"}, "c": {"file_name": "c.json", "formatting": "sharegpt"}}
    (tmp_path / "dataset_info.json").write_text(json.dumps(info))
    cfg = build_config({
        "model_name_or_path": str(tiny_model_dir), "stage": "grpo", "reward_funcs": "length", "dataset": "p,c",
        "dataset_dir": str(tmp_path), "template": "chatml", "cutoff_len": 64, "output_dir": str(tmp_path / "out"),
        "preprocessing_num_workers": 1,
    })  # fmt: skip
    tokenizer, template, _ = build_tokenizer_and_template(cfg)
    data = build_datasets(cfg, tokenizer, template)
    train: Any = data.train
    assert sorted(train["reference"], key=str) == ["5", None, None]
    user = {"role": "user", "tool_calls": None}
    expected = {
        "5": template.encode_prompt(tokenizer, [{**user, "content": "Add 2 and 3."}]),
        "hi": template.encode_prompt(tokenizer, [{**user, "content": "Say hi."}]),
    }
    assert expected["5"] in train["prompt_ids"] and expected["hi"] in train["prompt_ids"]
    for text, ids in zip(train["prompt"], train["prompt_ids"], strict=True):
        assert tokenizer(text)["input_ids"] == ids
        assert text.endswith("<|im_start|>assistant\n")
    assert any(text.endswith("Bye?<|im_end|>\n<|im_start|>assistant\n") for text in train["prompt"])
    assert data.report.dropped == {"no trained tokens after truncation": 1}
