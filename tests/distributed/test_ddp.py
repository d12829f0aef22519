"""Two processes (torchrun, gloo) train exactly what one process trains with the same global batch,
each sample once per epoch, the data prepared once, and only rank 0 writes: launched by lmforge
itself (FORCE_TORCHRUN), by plain ``torchrun -m lmforge`` or by ``accelerate launch -m lmforge``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from dist_helpers import (
    ACCELERATE_TWO,
    TORCHRUN_TWO,
    base_config,
    launch,
    observed,
    samples_per_step,
    worker_env,
    write_config,
)
from safetensors.torch import load_file

from lmforge.config import build_config
from lmforge.train.run import run_training


@pytest.mark.parametrize("launcher", ["lmforge", "torchrun", "accelerate"])
def test_two_processes_match_one_process_with_the_same_global_batch(
    launcher: str, tiny_model_dir: Path, data_file: Path, tmp_path: Path, monkeypatch
) -> None:
    out, observe = tmp_path / "ddp", tmp_path / "observe"
    flat = base_config(tiny_model_dir, data_file, out)
    if launcher == "lmforge":
        env = worker_env(tmp_path, observe, out, FORCE_TORCHRUN="1", NPROC_PER_NODE="2")
        done = launch(write_config(tmp_path / "ddp.yaml", flat), env)
    else:
        env = worker_env(tmp_path, observe, out)
        command = {"torchrun": TORCHRUN_TWO, "accelerate": ACCELERATE_TWO}[launcher]
        done = launch(write_config(tmp_path / "ddp.yaml", flat), env, launcher=command)
    assert done.returncode == 0, done.stderr[-3000:]

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home-single"))
    single = tmp_path / "single"
    run_training(build_config({**flat, "output_dir": str(single), "per_device_train_batch_size": 2}))

    ddp_weights, single_weights = load_file(out / "model.safetensors"), load_file(single / "model.safetensors")
    assert ddp_weights.keys() == single_weights.keys()
    worst = max((ddp_weights[k] - single_weights[k]).abs().max().item() for k in ddp_weights)
    assert worst < 1e-4  # reduction order differs across ranks; weights move ~1e-2 a step
    start = load_file(tiny_model_dir / "model.safetensors")
    assert any(not torch.equal(start[k], ddp_weights[k]) for k in start)  # it did train

    seen = observed(observe)
    assert sorted(seen) == [0, 1]
    steps = samples_per_step(seen)
    assert sorted(steps) == [1, 2, 3, 4]  # 8 samples / (1 per rank x 2 ranks)
    every = [marker for step in sorted(steps) for marker in steps[step]]
    assert sorted(every) == sorted(f"sample-{i}" for i in range(8))  # each exactly once in the epoch
    assert all(len(markers) == 2 for markers in steps.values())
    # rank 1 wrote no file in output_dir (transformers creates checkpoint folders on every rank: empty)
    assert [w for w in seen[1]["writes"] if not w.startswith("os.mkdir ")] == []
    assert any(path.endswith("run_config.yaml") for path in seen[0]["writes"])

    log = done.stderr
    assert "[rank 0] cache: built" in log and "[rank 1] cache: hit" in log  # tokenized once
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["distributed"]["world_size"] == 2
    assert [r["rank"] for r in manifest["distributed"]["ranks"]] == [0, 1]
    assert done.stdout.count("training finished at step 4") == 1
