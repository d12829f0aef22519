"""The output directory: create it (replacing a previous run only when asked), write final artifacts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from lmforge.config import RunConfig, dump_config
from lmforge.train.reliability.guards import holds_run


def prepare_output_dir(cfg: RunConfig, resuming: bool) -> Path:
    """Create output_dir. Call after ``check_output_dir`` accepted it: a previous run is only
    replaced when the user set overwrite_output_dir."""
    out = Path(cfg.train.output_dir)
    if not resuming and cfg.train.overwrite_output_dir and holds_run(out):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_run_config(cfg: RunConfig, output_dir: Path) -> None:
    dump_config(cfg, output_dir / "run_config.yaml")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically: a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
