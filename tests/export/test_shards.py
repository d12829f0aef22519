"""export_size as a size string shards the built-in model (~538 MB in fp32) with a correct index,
and the shards load in plain transformers with the same greedy answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from lmforge.cli import main as lmforge
from lmforge.data.templates import get_template

from .conftest import PROMPTS, greedy_hf

pytestmark = pytest.mark.slow


def test_export_size_200mb_shards_the_builtin_model_with_a_correct_index(
    builtin_dir: Path, tokenizer, tmp_path: Path
) -> None:
    target = tmp_path / "sharded"
    assert lmforge(["export", f"model_name_or_path={builtin_dir}", f"export_dir={target}", "export_size=200MB"]) == 0
    shards = sorted(p.name for p in target.glob("model-*.safetensors"))
    assert shards == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert all((target / s).stat().st_size <= 200 * 10**6 + 10**6 for s in shards)  # header aside
    index = json.loads((target / "model.safetensors.index.json").read_text())
    stored, total = {}, 0
    for shard in shards:
        with safe_open(target / shard, "pt") as f:
            for key in f.keys():  # noqa: SIM118
                stored[key] = shard
                tensor = f.get_tensor(key)
                total += tensor.numel() * tensor.element_size()
    assert index["weight_map"] == stored
    assert index["metadata"]["total_size"] == total

    exported = AutoModelForCausalLM.from_pretrained(target)
    original = AutoModelForCausalLM.from_pretrained(builtin_dir)
    template = get_template("chatml", tokenizer)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for prompt in PROMPTS[:2]:
        ids = template.encode_prompt(tokenizer, [{"role": "user", "content": prompt}])
        assert greedy_hf(exported, ids, 8, eos) == greedy_hf(original, ids, 8, eos)
