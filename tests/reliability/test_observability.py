"""Trackers (TensorBoard, wandb, SwanLab, MLflow) log the loss offline; step metrics; the run manifest."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from tiny_run import build_trainer

from lmforge.config import build_config
from lmforge.errors import LmforgeError
from lmforge.train.reliability import reliability_callbacks, requested_trackers
from lmforge.train.reliability.manifest import MANIFEST_NAME
from lmforge.train.reliability.metrics import model_flops_utilization, peak_flops_per_second

TRACKERS = ["tensorboard", "wandb", "swanlab", "mlflow"]
INSTALLED = [name for name in TRACKERS if importlib.util.find_spec(name) is not None]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _tensorboard_loss(out: Path) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = list((out / "runs").rglob("events.out.tfevents.*"))
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    return [event.value for event in accumulator.Scalars("train/loss")]


def _mlflow_loss(out: Path) -> list[str]:
    (metric,) = [p for p in (out / "mlruns").rglob("metrics/loss")]
    return metric.read_text().splitlines()


@pytest.fixture(scope="module")
def tracked_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 3-step run logging to every installed tracker at once."""
    out = tmp_path_factory.mktemp("tracked")
    cfg = build_config({"output_dir": str(out), "report_to": INSTALLED})
    env_before = {
        k: v for k, v in os.environ.items() if k.startswith(("WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "MLFLOW_"))
    }
    trainer = build_trainer(tiny_model_dir, out, max_steps=3, save_steps=100, callbacks=reliability_callbacks(cfg))
    trainer.train()
    (out / "log_history.json").write_text(json.dumps(trainer.state.log_history))
    assert {
        k: v for k, v in os.environ.items() if k.startswith(("WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "MLFLOW_"))
    } == env_before
    return out


@pytest.mark.skipif("tensorboard" not in INSTALLED, reason="tensorboard not installed")
def test_tensorboard_event_files_hold_the_loss(tracked_run: Path) -> None:
    assert len(_tensorboard_loss(tracked_run)) == 3


@pytest.mark.skipif("wandb" not in INSTALLED, reason="wandb not installed")
def test_wandb_offline_run_directory_holds_the_loss(tracked_run: Path) -> None:
    (run_file,) = list((tracked_run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert b"train/loss" in run_file.read_bytes()


@pytest.mark.skipif("swanlab" not in INSTALLED, reason="swanlab not installed")
def test_swanlab_local_log_holds_the_loss(tracked_run: Path) -> None:
    files = _files(tracked_run / "swanlog")
    assert any(b"train/loss" in p.read_bytes() for p in files), [str(p) for p in files]


@pytest.mark.skipif("mlflow" not in INSTALLED, reason="mlflow not installed")
def test_mlflow_file_store_holds_the_loss(tracked_run: Path) -> None:
    assert len(_mlflow_loss(tracked_run)) == 3


def test_logs_carry_throughput_and_memory(tracked_run: Path) -> None:
    history = json.loads((tracked_run / "log_history.json").read_text())
    logged = [entry for entry in history if "loss" in entry]
    assert len(logged) == 3
    for entry in logged:
        assert entry["tokens_per_sec"] > 0 and entry["samples_per_sec"] > 0 and entry["rss_gb"] > 0
        assert "mfu" not in entry  # CPU: no peak FLOP/s to divide by


def test_manifest_records_versions_config_hash_data_and_hardware(tracked_run: Path) -> None:
    manifest = json.loads((tracked_run / MANIFEST_NAME).read_text())
    assert {"torch", "transformers", "python"} <= set(manifest["versions"])
    assert len(manifest["config_hash"]) == 64
    assert manifest["datasets"]["train"]["rows"] == 64
    assert manifest["hardware"]["cpu_count"] >= 1
    assert manifest["parameters"]["total"] > 3_000_000
    assert manifest["git"] is None or len(manifest["git"]["commit"]) == 40


def test_unknown_or_missing_tracker_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LmforgeError, match="unknown tracker 'wandbb'.*tensorboard, wandb, swanlab, mlflow"):
        requested_trackers(build_config({"output_dir": str(tmp_path), "report_to": ["wandbb"]}))
    assert requested_trackers(build_config({"output_dir": str(tmp_path), "report_to": ["none"]})) == []


def test_mfu_formula() -> None:
    # 6N + 12·L·d·T with N=1e9, L=24, d=2048, T=4096 at 1000 tokens/s on a 1e15 FLOP/s device.
    per_token = 6e9 + 12 * 24 * 2048 * 4096
    assert model_flops_utilization(1000, 10**9, 24, 2048, 4096, 1e15) == pytest.approx(per_token * 1000 / 1e15)
    assert peak_flops_per_second("NVIDIA H100 PCIe") == 756e12
    assert peak_flops_per_second("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops_per_second("Some Unknown GPU") is None
