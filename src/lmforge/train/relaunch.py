"""What relaunching a run with ``--resume`` (``resume_from_checkpoint: auto``) does to its output_dir.

A preemptible job is relaunched with the same command until it is done, so ``--resume`` must be
right in every state the directory can be in:

- the run finished (final outputs written, its step target reached): a no-op that says so;
  transformers would otherwise train one more step past ``max_steps`` and overwrite the weights;
- it has a complete checkpoint: continue from the latest one (reliability/checkpoints.py);
- it died before its first checkpoint (logs and config only, no final weights, no
  all_results.json): start fresh, replacing that run's files, and say so.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from lmforge.train.reliability.guards import holds_run

logger = logging.getLogger(__name__)

FINAL_WEIGHTS = (
    "adapter_model.safetensors",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
FINAL_RESULTS = "all_results.json"


def resume_requested(cfg: Any) -> bool:
    value = cfg.train.resume_from_checkpoint
    if isinstance(value, str):
        return value.strip().lower() not in {"", "false", "no", "none"}
    return bool(value)


def has_final_outputs(output_dir: Path) -> bool:
    return (output_dir / FINAL_RESULTS).is_file() or any((output_dir / name).exists() for name in FINAL_WEIGHTS)


def finished_run(cfg: Any) -> tuple[int, dict[str, Any]] | None:
    """``(global_step, final metrics)`` when resuming would only repeat a finished run, else None.

    Finished: all_results.json is there and the run's final trainer_state.json reached this
    config's target (``max_steps``, or else ``num_train_epochs``). A config that asks for more
    steps or epochs than the run did is a continuation, not a finished run.
    """
    if not resume_requested(cfg):
        return None
    out = Path(cfg.train.output_dir)
    results = out / FINAL_RESULTS
    if not results.is_file():
        return None
    metrics = _read_json(results)
    state = _read_json(out / "trainer_state.json")
    step = int(state.get("global_step", 0))
    train = cfg.train
    if train.max_steps > 0:
        done = step >= train.max_steps
    else:
        epochs_done = float(state.get("epoch", 0.0)) >= train.num_train_epochs - 1e-6
        done = step >= int(state.get("max_steps", 0)) and epochs_done
    return (step, metrics) if done and state else None


def restarts_dead_run(cfg: Any, resume_checkpoint: str | None) -> bool:
    """True when ``--resume`` found no checkpoint in a run that stopped before its first save.

    Then the run starts fresh and replaces that run's files (only those, see outputs.py).
    A directory with final weights or all_results.json is never replaced this way.
    """
    out = Path(cfg.train.output_dir)
    if resume_checkpoint is not None or not resume_requested(cfg) or not holds_run(out):
        return False
    if has_final_outputs(out):
        return False
    logger.warning(
        "resume: %s holds a run that stopped before its first checkpoint; starting it again from step 0", out
    )
    return True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}
