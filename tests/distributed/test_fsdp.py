"""FSDP2 through transformers' fsdp/fsdp_config keys on CPU (gloo), 2 processes: full fine-tuning
and LoRA train what one process trains with the same global batch, and what they save (the full
state dict, the adapter) loads in transformers and peft."""

from __future__ import annotations

from pathlib import Path

import pytest
from dist_helpers import base_config, launch, worker_env, write_config
from safetensors.torch import load_file

from lmforge.config import build_config
from lmforge.train.run import run_training

FSDP = {"fsdp": "full_shard auto_wrap",
        "fsdp_config": {"fsdp_version": 2, "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]}}  # fmt: skip


@pytest.mark.parametrize(
    ("method", "weights"),
    [("full", "model.safetensors"), ("lora", "adapter_model.safetensors")],
)
def test_fsdp2_matches_one_process_and_saves_what_transformers_loads(
    method: str, weights: str, tiny_model_dir: Path, data_file: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "fsdp"
    flat = base_config(tiny_model_dir, data_file, out, max_steps=2, save_steps=100, finetuning_type=method)
    if method == "lora":
        flat.update(lora_target="all", learning_rate=5e-2)
    done = launch(write_config(tmp_path / "fsdp.yaml", {**flat, **FSDP}),
                  worker_env(tmp_path, FORCE_TORCHRUN="1", NPROC_PER_NODE="2"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home-single"))
    single = tmp_path / "single"
    run_training(build_config({**flat, "output_dir": str(single), "per_device_train_batch_size": 2}))
    sharded, alone = load_file(out / weights), load_file(single / weights)
    assert sharded.keys() == alone.keys()
    assert max((sharded[k] - alone[k]).abs().max().item() for k in sharded) < 1e-4
    if method == "full":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(out)
        assert sum(p.numel() for p in model.parameters()) == 3_219_776
    else:
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(out)
        trained = {n: p for n, p in model.named_parameters() if "lora_B" in n}
        assert trained and all(p.abs().sum() > 0 for p in trained.values())  # B starts at zero: it trained
