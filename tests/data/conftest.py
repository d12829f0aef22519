"""Helpers for the data tests: configs from flat keys, data files in a temporary folder, a private
cache home so no test reads or writes the user's tokenized-data cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lmforge.config import build_config


@pytest.fixture
def chatml(tokenizer):
    from lmforge.data.templates import get_template

    return get_template("chatml", tokenizer)


@pytest.fixture
def data_home(tmp_path, monkeypatch, tokenizer) -> Path:
    """A temporary $LMFORGE_HOME (requested after `tokenizer`, which needs the real one)."""
    home = tmp_path / "home"
    monkeypatch.setenv("LMFORGE_HOME", str(home))
    return home


def _make_cfg(**keys: Any):
    keys.setdefault("template", "chatml")
    return build_config(keys)


def _write_json(path: Path, records: Any) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def make_cfg():
    """``make_cfg(dataset=..., cutoff_len=...)`` → a validated RunConfig (template chatml by default)."""
    return _make_cfg


@pytest.fixture
def write_json():
    return _write_json


@pytest.fixture
def write_jsonl():
    return _write_jsonl
