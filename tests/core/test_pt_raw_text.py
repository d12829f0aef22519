"""stage pt with template: auto needs no chat template in any entry point: lmforge data and doctor
see the same raw-text tokens training does, on a base model whose tokenizer has none."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from lmforge.cli import main


def _base_model_and_corpus(tokenizer, factory, tmp_path: Path) -> tuple[Path, Path]:
    base_tokenizer = copy.deepcopy(tokenizer)
    base_tokenizer.chat_template = None
    model = factory(tmp_path / "base", base_tokenizer)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"Document {i}: the quick brown fox."}) + "\n" for i in range(4)))
    return model, corpus


def test_data_and_doctor_preview_pretraining_without_a_chat_template(
    tokenizer, tiny_model_factory, tmp_path: Path, capsys
) -> None:
    model, corpus = _base_model_and_corpus(tokenizer, tiny_model_factory, tmp_path)
    keys = [f"model_name_or_path={model}", "stage=pt", f"dataset={corpus}", "cutoff_len=16",
            f"output_dir={tmp_path / 'out'}"]  # fmt: skip
    assert main(["data", *keys, "--num-samples", "1"]) == 0
    shown = capsys.readouterr().out
    assert "Document 0: the quick brown fox." in shown and "[[" in shown  # raw text, trained
    assert main(["doctor", *keys]) == 0
    assert "none needed" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
