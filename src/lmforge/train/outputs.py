"""The output directory: create it, replace a previous run's files (only those), write final artifacts.

``overwrite_output_dir: true`` removes what an lmforge run writes there, by name, and nothing else:
an output_dir may hold the user's own files (notes, data, the config itself; ``output_dir: .`` is
the working directory), and those are never touched, nor is the directory itself removed.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from lmforge.atomic import atomic_write_json
from lmforge.config import RunConfig, dump_config
from lmforge.train.reliability.guards import holds_run

logger = logging.getLogger(__name__)

# Every file or folder a run writes into output_dir: weights and adapter, tokenizer, configs,
# logs and plots, reports, tracker folders and staging. Nothing outside this list is ever removed.
RUN_ARTIFACTS = frozenset(
    {
        # weights
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
        "adapter_model.safetensors", "adapter_model.bin",
        # configs
        "config.json", "generation_config.json", "adapter_config.json", "run_config.yaml",
        "training_args.json", "training_args.bin",
        # tokenizer
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json",
        # logs, results, reports
        "trainer_log.jsonl", "training_loss.png", "trainer_state.json", "train_results.json",
        "eval_results.json", "all_results.json", "predict_results.json", "generated_predictions.jsonl",
        "run_manifest.json", "template_checks.json",
        # trackers (TensorBoard, wandb, MLflow, SwanLab) and checkpoint staging
        "runs", "wandb", "mlruns", "swanlog", ".lmforge-staging",
    }
)  # fmt: skip
ARTIFACT_PATTERNS = (
    re.compile(r"checkpoint-\d+"),
    re.compile(r"model-\d+-of-\d+\.safetensors"),
    re.compile(r"pytorch_model-\d+-of-\d+\.bin"),
    re.compile(r".+\.json\.tmp"),  # write_json's staging file before lmforge.atomic
    re.compile(r"\..+\.tmp-[a-z0-9_]{8}"),  # lmforge.atomic's staging file or folder, left by a crash mid-write
)


def is_run_artifact(name: str) -> bool:
    return name in RUN_ARTIFACTS or any(p.fullmatch(name) for p in ARTIFACT_PATTERNS)


def remove_run_artifacts(output_dir: Path) -> list[str]:
    """Delete what an earlier run wrote in ``output_dir``; return the names removed (sorted)."""
    removed = []
    for child in sorted(output_dir.iterdir()):
        if not is_run_artifact(child.name):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
        removed.append(child.name)
    return removed


def prepare_output_dir(cfg: RunConfig, resuming: bool, replace: bool | None = None) -> Path:
    """Create output_dir. Call after ``check_output_dir`` accepted it and every other check passed.

    A previous run's files are removed when ``replace`` (default: overwrite_output_dir and not
    resuming); the user's own files stay.
    """
    out = Path(cfg.train.output_dir)
    if replace is None:
        replace = not resuming and cfg.train.overwrite_output_dir
    if replace and holds_run(out):
        removed = remove_run_artifacts(out)
        logger.info("replaced the previous run in %s (%d files and folders removed)", out, len(removed))
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_run_config(cfg: RunConfig, output_dir: Path) -> None:
    dump_config(cfg, output_dir / "run_config.yaml")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (lmforge.atomic): a reader never sees half a file."""
    atomic_write_json(path, payload)
