"""Which checkpoints can be trusted, where to resume from, and whether a save fits on disk.

transformers writes ``checkpoint-N`` in place; a crash halfway (kill -9, full disk, power loss)
leaves a folder that looks like a checkpoint but does not load, and ``get_last_checkpoint`` would
pick it. ``CheckpointWriter`` (writer.py) writes the marker ``lmforge_complete.json`` into a
checkpoint only once all of it is on disk; resume trusts only folders holding the marker, so a
partial folder is never "latest".
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from lmforge.errors import LmforgeError

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "lmforge_complete.json"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# Headroom over the estimated checkpoint size: safetensors/pickle overhead, tokenizer, metadata.
DISK_MARGIN = 1.1


def checkpoint_step(path: Path) -> int | None:
    """The step N of a ``checkpoint-N`` directory name, or None for any other name."""
    match = CHECKPOINT_RE.match(path.name)
    return int(match.group(1)) if match else None


def is_complete_checkpoint(path: str | Path) -> bool:
    """True when ``path`` was fully written: our marker plus the trainer state it certifies."""
    path = Path(path)
    return (path / COMPLETE_MARKER).is_file() and (path / "trainer_state.json").is_file()


def latest_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete ``checkpoint-N`` with the highest N in ``output_dir``, or None.

    Directories without the completion marker (a save killed midway, or a checkpoint written
    by plain transformers) are skipped, never guessed at.
    """
    root = Path(output_dir)
    if not root.is_dir():
        return None
    found = [
        (step, child)
        for child in root.iterdir()
        if child.is_dir() and (step := checkpoint_step(child)) is not None and is_complete_checkpoint(child)
    ]
    return max(found)[1] if found else None


def estimate_checkpoint_bytes(model: Any, with_optimizer: bool) -> int:
    """Bytes a checkpoint of ``model`` needs: weights saved (trainable only for adapters) + Adam's two moments.

    A PEFT model saves only its adapter; a full model saves every parameter. AdamW keeps two fp32
    moments per trainable parameter, saved in optimizer.pt. Quantized (4/8-bit) weights count their
    packed bytes plus their quantization state.
    """
    from lmforge.models.quantization import param_count, param_storage_bytes

    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    is_peft = hasattr(model, "peft_config")
    weights = sum(param_storage_bytes(p) for p in (trainable if is_peft else params))
    moments = 2 * 4 * sum(param_count(p) for p in trainable) if with_optimizer else 0
    return int((weights + moments) * DISK_MARGIN)


def check_disk_space(directory: str | Path, needed: int, what: str) -> None:
    """Raise a clear LmforgeError before a save that cannot fit, instead of a torn file later."""
    directory = Path(directory)
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise LmforgeError(
            f"not enough disk space to save {what} in {directory}: needs about {_gb(needed)}, {_gb(free)} free",
            "free space, set save_total_limit to keep fewer checkpoints, or choose another output_dir",
        )


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


AUTO_VALUES = {"auto", "true", "latest", "yes"}


def resolve_resume_checkpoint(cfg: Any) -> str | None:
    """The checkpoint to pass to ``Trainer.train(resume_from_checkpoint=...)``, or None to start fresh.

    ``resume_from_checkpoint: auto``/``true`` (the config loader maps both to True; ``--resume`` sets it)
    take the latest complete checkpoint in output_dir, and start fresh when there is none yet, so a
    preemptible job can always be launched with ``--resume``. A path must be a complete checkpoint.
    Never returns a partially written directory.
    """
    value = cfg.train.resume_from_checkpoint
    if value in (None, False) or (isinstance(value, str) and value.lower() in {"false", "no", "none", ""}):
        return None
    if value is True or (isinstance(value, str) and value.lower() in AUTO_VALUES):
        latest = latest_complete_checkpoint(cfg.train.output_dir)
        if latest is None:
            logger.warning("resume: no complete checkpoint in %s yet; starting from step 0", cfg.train.output_dir)
        return None if latest is None else str(latest)
    path = Path(str(value))
    if not path.is_dir():
        raise LmforgeError(
            f"resume_from_checkpoint: {path} is not a directory", "give a checkpoint-N directory or auto"
        )
    if not is_complete_checkpoint(path) and not (path / "trainer_state.json").is_file():
        raise LmforgeError(
            f"resume_from_checkpoint: {path} is not a complete checkpoint (no trainer_state.json)",
            "it was probably cut off while saving; use resume_from_checkpoint: auto to take the latest complete one",
        )
    return str(path)
