"""output_dir/run_manifest.json: what it takes to explain (or reproduce) a run months later.

Package versions, the lmforge git revision when running from a checkout, a hash of the resolved
config, the training/eval data fingerprints, and the hardware. Written when training begins (so an
interrupted run has one too) and rewritten on resume with ``resumed_from_step``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from lmforge.atomic import atomic_write_json

MANIFEST_NAME = "run_manifest.json"
PACKAGES = (
    "lmforge",
    "torch",
    "transformers",
    "peft",
    "trl",
    "accelerate",
    "datasets",
    "tokenizers",
    "safetensors",
    "deepspeed",
    "bitsandbytes",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_revision(path: Path | None = None) -> dict[str, Any] | None:
    """HEAD commit and dirty flag of the checkout holding lmforge's source, or None outside git."""
    where = path or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def config_hash(flat_config: dict[str, Any]) -> str:
    """sha256 of the config's canonical JSON: equal hashes mean equal settings."""
    text = json.dumps(flat_config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def dataset_fingerprint(dataset: Any) -> dict[str, Any] | None:
    """A ``datasets`` fingerprint (changes with the data and every transform) and row count."""
    if dataset is None:
        return None
    info: dict[str, Any] = {"type": type(dataset).__name__}
    fingerprint = getattr(dataset, "_fingerprint", None)  # datasets exposes no public accessor
    if fingerprint is not None:
        info["fingerprint"] = fingerprint
    try:
        info["rows"] = len(dataset)
    except TypeError:
        pass  # streaming datasets have no length
    return info


def hardware() -> dict[str, Any]:
    import psutil

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def build_manifest(cfg: Any, datasets: dict[str, Any] | None = None, model: Any = None) -> dict[str, Any]:
    flat = cfg.to_flat()
    manifest: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "config_hash": config_hash(flat),
        "versions": package_versions(),
        "git": git_revision(),
        "hardware": hardware(),
        "datasets": {name: dataset_fingerprint(ds) for name, ds in (datasets or {}).items()},
    }
    if model is not None:
        from lmforge.models.methods import count_parameters
        from lmforge.models.quantization import parameter_storage_bytes

        trainable, total = count_parameters(model)  # packed 4-bit weights counted as weights
        manifest["parameters"] = {"total": total, "trainable": trainable, "bytes": parameter_storage_bytes(model)}
    return manifest


def write_manifest(output_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write atomically (lmforge.atomic): a reader never sees half a manifest."""
    path = Path(output_dir) / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(path, manifest)


class ManifestCallback(TrainerCallback):
    """Writes the manifest when training begins, on the main process only."""

    def __init__(self, cfg: Any, datasets: dict[str, Any] | None = None, cluster: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.datasets = datasets
        self.cluster = cluster  # world size, nodes and ranks (distributed/cluster.py), several processes
        self.manifest: dict[str, Any] | None = None
        self._stepped = False

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        datasets = self.datasets
        if datasets is None and kwargs.get("train_dataloader") is not None:
            datasets = {"train": getattr(kwargs["train_dataloader"], "dataset", None)}
        manifest = build_manifest(self.cfg, datasets, model)
        manifest["resumed_from_step"] = state.global_step or None
        manifest["distributed"] = self.cluster or {"world_size": 1, "nodes": 1, "ranks": [{"rank": 0, "node": 0}]}
        self.manifest = manifest
        self._record_optimizer(args, kwargs.get("optimizer"))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.manifest is not None and not self._stepped:  # most optimizers allocate state at step 1
            self._stepped = True
            self._record_optimizer(args, kwargs.get("optimizer"))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.manifest is not None:
            self._record_optimizer(args, kwargs.get("optimizer"))

    def _record_optimizer(self, args: Any, optimizer: Any) -> None:
        """The optimizer and its state size (sum of state tensor bytes, the largest seen), so the
        saving of a memory-saving optimizer is on record."""
        from lmforge.train.reliability.metrics import optimizer_state_bytes

        assert self.manifest is not None
        if optimizer is not None:
            inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
            size = max(optimizer_state_bytes(optimizer), self.manifest.get("optimizer", {}).get("state_bytes", 0))
            self.manifest["optimizer"] = {"class": type(inner).__name__, "state_bytes": size}
        write_manifest(args.output_dir, self.manifest)
