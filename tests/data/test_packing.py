"""Packing fills rows up to cutoff_len; neat packing keeps packed samples independent (same logits as
alone, under sdpa and eager attention); the collator pads and drops attention_mask for neat packing."""

from __future__ import annotations

import itertools

import pytest
import torch

from lmforge.data.collator import build_collator
from lmforge.data.packing import best_fit_bins, pack_batch
from lmforge.data.pipeline import build_datasets
from lmforge.data.processors import IGNORE_INDEX


def test_best_fit_fills_rows_and_loses_nothing():
    lengths = [7, 3, 5, 2, 8, 1, 4, 6, 9, 5]
    bins = best_fit_bins(lengths, 10)
    assert sorted(i for b in bins for i in b) == list(range(10))
    fills = sorted(sum(lengths[i] for i in b) for b in bins)
    assert fills == [10, 10, 10, 10, 10]  # 50 tokens, 5 full rows


def test_pack_batch_neat_positions_restart_and_plain_positions_run_on():
    batch = {"input_ids": [[1, 2, 3], [4, 5], [6, 7, 8, 9]], "labels": [[M, 2, 3], [M, 5], [M, 7, 8, 9]]}
    neat = pack_batch(batch, cutoff_len=5, neat=True)
    assert neat["input_ids"] == [[6, 7, 8, 9], [1, 2, 3, 4, 5]]
    assert neat["labels"] == [[M, 7, 8, 9], [M, 2, 3, M, 5]]
    assert neat["position_ids"] == [[0, 1, 2, 3], [0, 1, 2, 0, 1]]
    plain = pack_batch(batch, cutoff_len=5, neat=False)
    assert plain["position_ids"] == [[0, 1, 2, 3], [0, 1, 2, 3, 4]]


M = IGNORE_INDEX


def test_packing_fills_rows_up_to_cutoff_len(tokenizer, chatml, make_cfg, write_json, data_home, tmp_path):
    rows = [{"instruction": "word " * (i % 17 + 1), "output": "ok " * (i % 5 + 1)} for i in range(60)]
    write_json(tmp_path / "d.json", rows)
    base = {"dataset": str(tmp_path / "d.json"), "dataset_dir": str(tmp_path), "cutoff_len": 128}
    alone = build_datasets(make_cfg(**base), tokenizer, chatml).train
    packed = build_datasets(make_cfg(**base, packing=True), tokenizer, chatml).train
    lengths = [len(r) for r in packed["input_ids"]]
    assert sum(lengths) == sum(len(r) for r in alone["input_ids"])  # every token kept
    assert max(lengths) <= 128 and len(packed) < len(alone)
    assert sorted(lengths)[1] > 128 - min(len(r) for r in alone["input_ids"])  # all rows but one full
    assert packed.column_names == ["input_ids", "labels", "position_ids"]
    first = packed[0]
    assert first["position_ids"] == list(range(len(first["input_ids"])))


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_neat_packing_gives_each_sample_its_logits_alone(
    tokenizer, chatml, make_cfg, write_json, data_home, tmp_path, tiny_model_dir, attention
):
    from transformers import AutoModelForCausalLM

    rows = [{"instruction": f"question {i} " * (i + 1), "output": f"answer {i}"} for i in range(5)]
    write_json(tmp_path / "d.json", rows)
    keys = {"dataset": str(tmp_path / "d.json"), "dataset_dir": str(tmp_path), "cutoff_len": 64}
    singles = build_datasets(make_cfg(**keys), tokenizer, chatml).train
    cfg = make_cfg(**keys, neat_packing=True)
    packed = build_datasets(cfg, tokenizer, chatml).train
    assert len(packed) < len(singles)
    collate = build_collator(cfg, tokenizer)
    batch = collate([packed[i] for i in range(len(packed))])
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == len(packed)

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=attention).eval()
    with torch.no_grad():
        # use_cache=False as in training: with a KV cache transformers skips the packed-sequence mask.
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        single_logits = {tuple(s): model(input_ids=torch.tensor([s])).logits[0] for s in singles["input_ids"]}
    checked = 0
    for row, positions in enumerate(batch["position_ids"].tolist()):
        n = len(packed[row]["input_ids"])
        starts = [i for i in range(n) if positions[i] == 0] + [n]
        for start, end in itertools.pairwise(starts):
            sample = tuple(batch["input_ids"][row, start:end].tolist())
            torch.testing.assert_close(logits[row, start:end], single_logits[sample], atol=1e-5, rtol=1e-4)
            checked += 1
    assert checked == len(singles)
    # The check can fail: with an attention mask the packed samples see each other and logits change.
    with torch.no_grad():
        mask = torch.ones_like(batch["input_ids"])
        leaky = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], attention_mask=mask).logits
    assert not torch.allclose(leaky, logits, atol=1e-3)


def test_collator_pads_with_pad_token_and_ignored_labels(tokenizer, make_cfg):
    collate = build_collator(make_cfg(), tokenizer)
    batch = collate([{"input_ids": [5, 6, 7], "labels": [M, 6, 7]}, {"input_ids": [8], "labels": [8]}])
    pad = tokenizer.pad_token_id
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, pad, pad]]
    assert batch["labels"].tolist() == [[M, 6, 7], [8, M, M]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
