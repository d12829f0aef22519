"""The tokenized cache: reused when nothing changed, rebuilt when the data file, a data key or the
template changes, and never used stale from a tokenized_path."""

from __future__ import annotations

import pytest

from lmforge.data.pipeline import build_datasets
from lmforge.data.templates import get_template
from lmforge.errors import LmforgeError

ROWS = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(20)]


@pytest.fixture
def keys(tmp_path, write_json):
    write_json(tmp_path / "d.json", ROWS)
    return {"dataset": str(tmp_path / "d.json"), "dataset_dir": str(tmp_path), "cutoff_len": 64}


def test_second_build_reuses_the_cache(tokenizer, chatml, make_cfg, keys, data_home):
    first = build_datasets(make_cfg(**keys), tokenizer, chatml)
    second = build_datasets(make_cfg(**keys), tokenizer, chatml)
    assert (first.report.cache_hit, second.report.cache_hit) == (False, True)
    assert second.report.cache_path.startswith(str(data_home / "datasets"))
    assert second.train["input_ids"] == first.train["input_ids"]
    assert second.report.train == first.report.train  # stats travel with the cache


def test_cache_rebuilt_when_data_file_changes(tokenizer, chatml, make_cfg, keys, data_home, write_json, tmp_path):
    build_datasets(make_cfg(**keys), tokenizer, chatml)
    write_json(tmp_path / "d.json", [*ROWS, {"instruction": "new", "output": "row"}])
    again = build_datasets(make_cfg(**keys), tokenizer, chatml)
    assert again.report.cache_hit is False and len(again.train) == 21


def test_cache_rebuilt_when_a_data_key_or_template_changes(tokenizer, chatml, make_cfg, keys, data_home):
    build_datasets(make_cfg(**keys), tokenizer, chatml)
    assert build_datasets(make_cfg(**keys), tokenizer, chatml).report.cache_hit
    assert not build_datasets(make_cfg(**keys, train_on_prompt=True), tokenizer, chatml).report.cache_hit
    assert not build_datasets(make_cfg(**{**keys, "cutoff_len": 65}), tokenizer, chatml).report.cache_hit
    other = get_template("qwen", tokenizer)
    assert not build_datasets(make_cfg(**keys, template="qwen"), tokenizer, other).report.cache_hit
    changed = get_template("chatml", tokenizer, default_system="Be brief.")  # same name, new definition
    assert not build_datasets(make_cfg(**keys), tokenizer, changed).report.cache_hit


def test_overwrite_cache_rebuilds(tokenizer, chatml, make_cfg, keys, data_home):
    build_datasets(make_cfg(**keys), tokenizer, chatml)
    assert not build_datasets(make_cfg(**keys, overwrite_cache=True), tokenizer, chatml).report.cache_hit


def test_tokenized_path_is_reused_and_refused_when_stale(tokenizer, chatml, make_cfg, keys, data_home, tmp_path):
    path = str(tmp_path / "tok")
    assert not build_datasets(make_cfg(**keys, tokenized_path=path), tokenizer, chatml).report.cache_hit
    assert build_datasets(make_cfg(**keys, tokenized_path=path), tokenizer, chatml).report.cache_hit
    with pytest.raises(LmforgeError, match=r"was built from different inputs \(changed: data keys\)"):
        build_datasets(make_cfg(**keys, tokenized_path=path, mask_history=True), tokenizer, chatml)
    rebuilt = build_datasets(
        make_cfg(**keys, tokenized_path=path, mask_history=True, overwrite_cache=True), tokenizer, chatml
    )
    assert rebuilt.report.cache_hit is False
