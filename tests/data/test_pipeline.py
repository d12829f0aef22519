"""The pipeline's execution modes give the same tokens: streaming (lazy IterableDataset) and parallel
tokenization (preprocessing_num_workers) match the plain in-memory build."""

from __future__ import annotations

import os

from datasets import IterableDataset

from lmforge.data.pipeline import build_datasets

ROWS = [{"instruction": f"question {i} " * (i % 7 + 1), "output": f"answer {i}"} for i in range(240)]


def test_streaming_gives_the_same_samples(tokenizer, chatml, make_cfg, write_jsonl, data_home, tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ROWS)
    keys = {"dataset": str(tmp_path / "d.jsonl"), "dataset_dir": str(tmp_path), "cutoff_len": 32}
    plain = build_datasets(make_cfg(**keys), tokenizer, chatml).train
    # buffer_size: 1 keeps the file's order (a stream is shuffled through that window)
    streamed = build_datasets(make_cfg(**keys, streaming=True, max_samples=50, buffer_size=1), tokenizer, chatml)
    assert isinstance(streamed.train, IterableDataset) and streamed.report.cache_path is None
    rows = list(streamed.train)
    assert len(rows) == 50
    assert [r["input_ids"] for r in rows] == plain["input_ids"][:50]
    assert [r["labels"] for r in rows] == plain["labels"][:50]


def test_parallel_tokenization_matches_one_process(tokenizer, chatml, make_cfg, write_jsonl, data_home, tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ROWS)
    keys = {"dataset": str(tmp_path / "d.jsonl"), "dataset_dir": str(tmp_path), "preprocessing_batch_size": 100}
    one = build_datasets(make_cfg(**keys, preprocessing_num_workers=1), tokenizer, chatml)
    environ, before = os.environ, dict(os.environ)
    two = build_datasets(make_cfg(**keys, preprocessing_num_workers=2, overwrite_cache=True), tokenizer, chatml)
    assert os.environ is environ and dict(os.environ) == before  # datasets swaps in a copy; put back
    assert not two.report.cache_hit
    assert two.train["input_ids"] == one.train["input_ids"] and two.train["labels"] == one.train["labels"]
