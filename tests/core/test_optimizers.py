"""Memory-saving optimizers on a small full fine-tuning run (tests/core/optim_run.py): each lowers the
loss, keeps the state size its method promises against AdamW (computed here from the weight shapes),
logs it every step and records it in the manifest, and GaLore and BAdam resume exactly after SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from optim_run import LOSS_LOG, build_trainer, losses_by_step, make_model_dir

HERE = Path(__file__).resolve().parent
RANK = 8
METHODS: dict[str, dict[str, Any]] = {
    "adamw": {},
    "galore": {"use_galore": True, "galore_rank": RANK, "galore_scale": 1.0, "galore_update_interval": 3},
    "apollo": {"use_apollo": True, "apollo_rank": RANK, "apollo_scale": 1.0},
    "badam": {"use_badam": True, "badam_switch_interval": 3, "learning_rate": 1e-2},
    "muon": {"use_muon": True},
    "adalomo": {"optim": "adalomo", "learning_rate": 0.05},
    "adamw_8bit": {"optim": "adamw_bnb_8bit"},
}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"optim": "adalomo", "gradient_accumulation_steps": 2}, "optim: adalomo updates each weight during backward"),
        ({"optim": "lomo", "max_grad_norm": 1.0}, "so max_grad_norm cannot clip it"),
        ({"optim": "adalomo", "skip_nonfinite_steps": True}, "the step cannot be skipped"),
        ({"use_apollo": True, "apollo_layerwise": True, "resume_from_checkpoint": "x"}, "would restart their state"),
        ({"use_badam": True, "badam_mode": "ratio"}, "badam_mode: ratio is not available"),
        ({"use_badam": True, "badam_switch_interval": 0}, "badam_switch_interval must be a positive"),
        ({"optim": "galore_adamw"}, "optim: galore_adamw is spelled use_galore: true"),
        ({"use_muon": True, "optim": "adafactor"}, "use_muon brings its own update rule"),
        ({"use_galore": True, "optim": "sgd"}, "use_galore wraps AdamW, 8-bit AdamW or Adafactor"),
        ({"use_galore": True, "optim_target_modules": ["q_proj"]}, "optim_target_modules is read by transformers'"),
        ({"use_muon": True, "finetuning_type": "lora", "loraplus_lr_ratio": 16}, "loraplus_lr_ratio builds its own"),
        ({"apollo_rank": 4}, "apollo_rank takes effect only with use_apollo: true"),
    ],
)
def test_config_refuses_what_the_optimizer_cannot_do(keys: dict[str, Any], message: str) -> None:
    from lmforge.config import build_config
    from lmforge.errors import LmforgeError

    with pytest.raises(LmforgeError, match=re.escape(message)):
        build_config({"finetuning_type": "full", **keys})


def test_fused_updates_turn_clipping_off_and_keep_the_optim_name() -> None:
    from lmforge.config import build_config
    from lmforge.train.arguments import build_training_arguments

    args = build_training_arguments(build_config({"finetuning_type": "full", "optim": "adalomo"}))
    assert (args.max_grad_norm, args.optim) == (0.0, "adalomo")  # transformers passes LOMO the lr by name
    args = build_training_arguments(build_config({"finetuning_type": "full", "use_galore": True}))
    assert (args.max_grad_norm, args.optim) == (1.0, "adamw_torch")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("small-llama"))


@pytest.fixture(scope="module")
def runs(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each method trained 8 steps from the same weights on the same batches."""
    results = {}
    for name, keys in METHODS.items():
        out = tmp_path_factory.mktemp(name)
        trainer = build_trainer(model_dir, out, keys)
        trainer.train()
        logs = [e for e in trainer.state.log_history if "loss" in e]
        manifest = json.loads((out / "run_manifest.json").read_text())
        results[name] = {"trainer": trainer, "losses": losses_by_step(trainer), "logs": logs, "manifest": manifest}
    return results


def _shapes(model: torch.nn.Module) -> dict[str, Any]:
    """Weight groups of the small Llama: hidden matrices (every linear but the tied head), the rest."""
    linear = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n != "lm_head"}
    params = dict(model.named_parameters())
    return {"params": params, "hidden": {n: params[n].shape for n in linear if n in params}}


def _adamw_bytes(params: dict[str, torch.Tensor]) -> int:
    return sum(8 * p.numel() + 4 for p in params.values())  # two fp32 moments + the step scalar


def _state_bytes(run: dict[str, Any]) -> int:
    return run["manifest"]["optimizer"]["state_bytes"]


@pytest.mark.parametrize("name", [m for m in METHODS if m != "adamw"])
def test_optimizer_lowers_the_loss(runs: dict[str, Any], name: str) -> None:
    losses = runs[name]["losses"]
    assert sorted(losses) == list(range(1, 9))
    first, last = sum(losses[s] for s in (1, 2, 3)) / 3, sum(losses[s] for s in (6, 7, 8)) / 3
    assert last < first - 0.05, losses


def test_state_sizes_are_what_each_method_promises(runs: dict[str, Any]) -> None:
    shapes = _shapes(runs["adamw"]["trainer"].model)
    params, hidden = shapes["params"], shapes["hidden"]
    rest = {n: p for n, p in params.items() if n not in hidden}
    adamw = _adamw_bytes(params)
    assert _state_bytes(runs["adamw"]) == adamw

    # GaLore: Adam moments of the rank-r projection plus the projection matrix, per hidden matrix.
    def low_rank(m: int, n: int) -> int:
        return 4 * (2 * m * RANK + RANK * n) if m >= n else 4 * (2 * RANK * n + m * RANK)

    galore = sum(low_rank(*shape) for shape in hidden.values()) + sum(8 * p.numel() for p in rest.values())
    assert _state_bytes(runs["galore"]) == galore
    # APOLLO: the same low-rank moments and projection, plus the norm-growth limiter's scalar.
    assert _state_bytes(runs["apollo"]) == galore + 4 * len(hidden)
    # Muon: one fp32 momentum per hidden matrix; AdamW (moments + step) for embeddings and norms.
    muon = sum(4 * torch.Size(s).numel() for s in hidden.values()) + _adamw_bytes(rest)
    assert _state_bytes(runs["muon"]) == muon
    # AdaLomo: factored second moments, a row and a column vector per matrix.
    factored = sum(4 * (p.shape[0] + p.shape[1]) if p.ndim == 2 else 4 * p.numel() for p in params.values())
    assert _state_bytes(runs["adalomo"]) == factored
    # BAdam: Adam moments + fp32 master copy of one decoder layer (of 4); embeddings and norm frozen.
    layer = {n: p for n, p in params.items() if ".layers.0." in n}
    assert _state_bytes(runs["badam"]) == sum(12 * p.numel() + 4 for p in layer.values())
    # 8-bit AdamW: one byte per moment entry (+ block scales); transformers keeps the embedding 32-bit.
    embedding = 8 * params["model.embed_tokens.weight"].numel()
    eight_bit = _state_bytes(runs["adamw_8bit"])
    assert embedding < eight_bit < embedding + 0.3 * (adamw - embedding)

    ratios = {name: _state_bytes(run) / adamw for name, run in runs.items()}
    assert ratios["adalomo"] < 0.02 and ratios["galore"] < 0.2 and ratios["apollo"] < 0.2
    assert ratios["badam"] < 0.4 and ratios["adamw_8bit"] < 0.4 and ratios["muon"] < 0.6


def test_optimizer_state_is_logged_every_step(runs: dict[str, Any]) -> None:
    for name, run in runs.items():
        sizes = [entry["optimizer_state_mb"] for entry in run["logs"]]
        assert len(sizes) == 8, name
        if name != "badam":  # BAdam's state restarts at each block switch
            assert sizes[-1] == pytest.approx(_state_bytes(run) / 1e6, abs=1e-3), name
        assert max(sizes) == pytest.approx(_state_bytes(run) / 1e6, abs=1e-3), name


def test_manifest_names_the_optimizer_class(runs: dict[str, Any]) -> None:
    classes = {name: run["manifest"]["optimizer"]["class"] for name, run in runs.items()}
    assert classes == {
        "adamw": "AdamW",
        "galore": "AdamW",  # galore_torch's AdamW
        "apollo": "AdamW",  # apollo_torch's AdamW
        "badam": "ResumableBlockOptimizer",
        "muon": "MuonWithAdamW",
        "adalomo": "AdaLomoAnyDevice",
        "adamw_8bit": "AdamW",  # bitsandbytes' AdamW (optim_bits=8)
    }


def test_adalomo_fused_update_is_the_same_on_the_trained_positions_path(model_dir: Path, tmp_path: Path) -> None:
    keys = {**METHODS["adalomo"], "max_steps": 4}
    sparse = build_trainer(model_dir, tmp_path / "sparse", {**keys, "sparse_logits": True})
    assert sparse.sparse_logits
    sparse.train()
    dense = build_trainer(model_dir, tmp_path / "dense", {**keys, "sparse_logits": False})
    dense.train()
    a, b = losses_by_step(sparse), losses_by_step(dense)
    assert a[4] != a[1]
    for step in range(1, 5):
        assert a[step] == pytest.approx(b[step], abs=1e-4), step


@pytest.mark.parametrize("name", ["apollo", "muon", "adalomo", "adamw_8bit"])
def test_resume_from_checkpoint_is_exact(model_dir: Path, tmp_path: Path, runs: dict[str, Any], name: str) -> None:
    """The other optimizers' state (projections, Muon + AdamW, factored moments, 8-bit blocks) survives
    a checkpoint: resuming at step 4 continues the uninterrupted losses of ``runs``."""
    keys = {**METHODS[name], "save_steps": 4}
    first = build_trainer(model_dir, tmp_path, {**keys, "max_steps": 8})
    first.train()
    resumed = build_trainer(model_dir, tmp_path, keys)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))
    after, expected = losses_by_step(resumed), runs[name]["losses"]
    for step in range(5, 9):
        assert after[step] == pytest.approx(expected[step], abs=1e-6), step


def _wait_for(path: Path, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"training exited early: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.2)


KILLED = ("galore", "badam")


@pytest.fixture(scope="module")
def killed_runs(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """GaLore and BAdam runs (started together) SIGKILLed once checkpoint-4 is written."""
    runs = {}
    for name in KILLED:
        out = tmp_path_factory.mktemp(f"killed-{name}") / "run"
        log = (out.parent / "child.log").open("w")
        keys = {**METHODS[name], "save_steps": 4}
        command = [sys.executable, str(HERE / "optim_run.py"), str(model_dir), str(out), json.dumps(keys)]
        process = subprocess.Popen(
            [*command, "--stall-after", "4"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        runs[name] = (out, process, log)
    try:
        for out, process, log in runs.values():
            _wait_for(out / "checkpoint-4" / "trainer_state.json", process, Path(log.name))  # written last
        time.sleep(0.5)
    finally:
        for _, process, log in runs.values():
            process.send_signal(signal.SIGKILL)
            process.wait()
            log.close()
    for _, process, _ in runs.values():
        assert process.returncode == -signal.SIGKILL
    return {name: out for name, (out, _, _) in runs.items()}


@pytest.mark.parametrize("name", KILLED)
def test_sigkill_after_checkpoint_resume_reproduces_uninterrupted_losses(
    model_dir: Path, killed_runs: dict[str, Path], runs: dict[str, Any], name: str
) -> None:
    """The GaLore projection (recomputed every 3 steps) and the BAdam block (switched every 3
    steps) both straddle the checkpoint at step 4."""
    out = killed_runs[name]
    killed = [json.loads(line) for line in (out / LOSS_LOG).read_text().splitlines()]
    assert [r["step"] for r in killed] == [1, 2, 3, 4]
    resumed = build_trainer(model_dir, out, {**METHODS[name], "save_steps": 4})
    resumed.train(resume_from_checkpoint=str(out / "checkpoint-4"))
    after, expected = losses_by_step(resumed), runs[name]["losses"]
    for step in range(5, 9):
        assert after[step] == pytest.approx(expected[step], abs=1e-6), step
