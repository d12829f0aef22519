"""Preference data: pairs and feedback rows are the SFT template's tokens, only the answers trained,
truncated by LLaMA-Factory's rule; `lmforge data` shows chosen and rejected with their masks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from lmforge.commands import data as data_command
from lmforge.data.pairwise import feedback_batch, pairwise_batch
from lmforge.data.processors import IGNORE_INDEX
from lmforge.data.record import message
from lmforge.data.templates import get_template


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


PROMPT = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_pair_rows_share_the_prompt_and_train_only_each_answer(tokenizer: Any) -> None:
    template = get_template("chatml", tokenizer)
    batch = {"messages": [[message("user", "Hi")]], "system": [None], "tools": [None],
             "chosen": [message("assistant", "Hello!")], "rejected": [message("assistant", "Go.")]}  # fmt: skip
    rows = pairwise_batch(batch, tokenizer=tokenizer, template=template, cutoff_len=64, default_system=None)
    prompt = _ids(tokenizer, PROMPT)
    for side, answer in (("chosen", "Hello!"), ("rejected", "Go.")):
        trained = _ids(tokenizer, f"{answer}<|im_end|>\n")
        assert rows[f"{side}_input_ids"][0] == prompt + trained
        assert rows[f"{side}_labels"][0] == [IGNORE_INDEX] * len(prompt) + trained


def test_pair_truncation_cuts_both_answers_to_the_same_length(tokenizer: Any) -> None:
    template = get_template("chatml", tokenizer)
    long = " ".join(["word"] * 40)
    batch = {"messages": [[message("user", "Hi")]], "system": [None], "tools": [None],
             "chosen": [message("assistant", long)], "rejected": [message("assistant", long + " more")]}  # fmt: skip
    prompt_len = len(_ids(tokenizer, PROMPT))
    assert prompt_len == 10
    rows = pairwise_batch(batch, tokenizer=tokenizer, template=template, cutoff_len=24, default_system=None)
    # a short prompt (2 x 10 < 24) is kept whole; both answers get the remaining 14 tokens
    assert len(rows["chosen_input_ids"][0]) == len(rows["rejected_input_ids"][0]) == 24
    assert rows["chosen_labels"][0] == [IGNORE_INDEX] * 10 + rows["chosen_input_ids"][0][10:]
    rows = pairwise_batch(batch, tokenizer=tokenizer, template=template, cutoff_len=20, default_system=None)
    # both long: shares in proportion to the prompt and the longer answer (10 : 46 -> 4 : 16)
    assert rows["chosen_labels"][0] == [IGNORE_INDEX] * 4 + rows["chosen_input_ids"][0][4:]
    assert len(rows["rejected_input_ids"][0]) == 20


def test_feedback_rows_pair_each_prompt_with_another_answer_for_the_kl_estimate(tokenizer: Any) -> None:
    template = get_template("chatml", tokenizer)
    conversations = [[message("user", q), message("assistant", a)] for q, a in (("Hi", "Hello!"), ("Yo", "Hey."))]
    batch = {"messages": conversations, "system": [None, None], "tools": [None, None], "kto_label": [True, False]}
    rows = feedback_batch(batch, tokenizer=tokenizer, template=template, cutoff_len=64, default_system=None)
    first_prompt = _ids(tokenizer, PROMPT)
    assert rows["input_ids"][0] == first_prompt + _ids(tokenizer, "Hello!<|im_end|>\n")
    assert rows["kl_input_ids"][0] == first_prompt + _ids(tokenizer, "Hey.<|im_end|>\n")  # the batch reversed
    assert rows["kto_label"] == [True, False]


def test_data_command_shows_chosen_and_rejected_with_their_masks(
    builtin_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tokenizer: Any
) -> None:
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    data = tmp_path / "pairs.json"
    data.write_text(json.dumps([{"instruction": "Hi", "chosen": "Hello!", "rejected": "Go."}]))
    config = tmp_path / "cfg.yaml"
    config.write_text(f"model_name_or_path: {builtin_dir}\nstage: dpo\ndataset: {data}\ntemplate: chatml\n")
    parser = argparse.ArgumentParser()
    data_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", str(config), "--num-samples", "1"])
    args.overrides = []
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "--- sample 0 (chosen): 14 tokens, 4 trained, 10 masked" in out
    assert "--- sample 0 (rejected): 14 tokens, 4 trained, 10 masked" in out
    assert f"{PROMPT}[[Hello!<|im_end|>\n]]" in out and f"{PROMPT}[[Go.<|im_end|>\n]]" in out
