"""DeepSpeed ZeRO-2 and ZeRO-3 on CPU with 2 processes (gloo): a few steps, a checkpoint, a resume.
The first run on a machine compiles DeepSpeed's shm_comm op (~50 s), cached in TORCH_EXTENSIONS_DIR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dist_helpers import base_config, launch, worker_env, write_config

pytest.importorskip("deepspeed", reason="the deepspeed extra is not installed: pip install 'lmforge[deepspeed]'")


@pytest.mark.parametrize("zero", ["ds_z2", "ds_z3"])
def test_zero_trains_saves_and_resumes_on_two_cpu_processes(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path, zero: str
) -> None:
    out = tmp_path / zero
    flat = base_config(tiny_model_dir, data_file, out, deepspeed=zero, max_steps=2, save_steps=2)
    env = worker_env(tmp_path, FORCE_TORCHRUN="1", NPROC_PER_NODE="2")
    first = launch(write_config(tmp_path / "first.yaml", flat), env)
    assert first.returncode == 0, first.stderr[-3000:]
    checkpoint = out / "checkpoint-2"
    assert (checkpoint / "lmforge_complete.json").is_file()
    shards = sorted(p.name for p in (checkpoint / "global_step2").iterdir())
    assert any("optim_states" in name for name in shards) and len([n for n in shards if "optim" in n]) == 2

    resumed = launch(write_config(tmp_path / "more.yaml", {**flat, "max_steps": 4}), env, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["resumed_from_step"] == 2 and manifest["distributed"]["world_size"] == 2
    logged = [json.loads(line)["step"] for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert [s for s in logged if s > 2] and min(s for s in logged if s > 2) == 3
    assert (out / "model.safetensors").is_file()
