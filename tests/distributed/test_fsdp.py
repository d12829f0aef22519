"""FSDP2 through transformers' fsdp/fsdp_config keys on CPU (gloo), 2 processes: full fine-tuning
trains what one process trains with the same global batch, and the full state dict it saves loads
in transformers."""

from __future__ import annotations

from pathlib import Path

from dist_helpers import base_config, launch, worker_env, write_config
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from lmforge.config import build_config
from lmforge.train.run import run_training


def test_fsdp2_full_fine_tuning_matches_one_process_and_saves_a_loadable_model(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "fsdp"
    fsdp = {"fsdp": "full_shard auto_wrap", "fsdp_config": {"fsdp_version": 2,
            "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]}}  # fmt: skip
    flat = base_config(tiny_model_dir, data_file, out, max_steps=2, save_steps=100)
    done = launch(write_config(tmp_path / "fsdp.yaml", {**flat, **fsdp}),
                  worker_env(tmp_path, FORCE_TORCHRUN="1", NPROC_PER_NODE="2"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home-single"))
    single = tmp_path / "single"
    run_training(build_config({**flat, "output_dir": str(single), "per_device_train_batch_size": 2}))
    sharded, alone = load_file(out / "model.safetensors"), load_file(single / "model.safetensors")
    assert sharded.keys() == alone.keys()
    assert max((sharded[k] - alone[k]).abs().max().item() for k in sharded) < 1e-4
    model = AutoModelForCausalLM.from_pretrained(out)
    assert sum(p.numel() for p in model.parameters()) == 3_219_776
