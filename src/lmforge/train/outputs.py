"""The output directory: refuse to clobber a previous run, find checkpoints, save final artifacts."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from lmforge.config import RunConfig, dump_config
from lmforge.errors import LmforgeError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def prepare_output_dir(cfg: RunConfig, resume: str | None) -> Path:
    """Create output_dir; a non-empty one is a previous run, untouched unless overwrite or resume."""
    out = Path(cfg.train.output_dir)
    if resume is None and out.is_dir() and any(out.iterdir()):
        if not cfg.train.overwrite_output_dir:
            raise LmforgeError(
                f"output_dir {out} already holds a previous run; nothing was changed",
                "choose another output_dir, set overwrite_output_dir: true to replace it, "
                "or resume_from_checkpoint: auto to continue it",
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first. A checkpoint is complete once trainer_state.json exists
    (the Trainer writes it last)."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in out.iterdir()
        if p.is_dir() and (m := CHECKPOINT_RE.match(p.name)) and (p / "trainer_state.json").is_file()
    ]
    return [p for _, p in sorted(found)]


def resolve_resume(cfg: RunConfig) -> str | None:
    """resume_from_checkpoint: a path, or true/auto for the latest complete checkpoint."""
    value = cfg.train.resume_from_checkpoint
    if value in (None, False):
        return None
    if value is True:
        checkpoints = list_checkpoints(cfg.train.output_dir)
        if not checkpoints:
            raise LmforgeError(
                f"resume_from_checkpoint: no complete checkpoint in {cfg.train.output_dir}",
                "train without resume_from_checkpoint, or point it at a checkpoint directory",
            )
        return str(checkpoints[-1])
    path = Path(str(value))
    if not (path / "trainer_state.json").is_file():
        raise LmforgeError(f"resume_from_checkpoint: {path} is not a complete checkpoint (no trainer_state.json)")
    return str(path)


def save_run_config(cfg: RunConfig, output_dir: Path) -> None:
    dump_config(cfg, output_dir / "run_config.yaml")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically: a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
