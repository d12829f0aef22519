"""Re-launching ``lmforge train`` under torchrun, as LLaMA-Factory users expect.

``plan.py`` decides from the environment (FORCE_TORCHRUN, NNODES, NODE_RANK, NPROC_PER_NODE,
MASTER_ADDR, MASTER_PORT) and the visible GPUs whether and how to launch; ``torchrun.py`` runs
torch's own launcher in this process and turns its failures into one message per failed rank, with
the workers' exit code; ``worker.py`` is the worker side (rank-prefixed logs, the error file the
launcher reads). See docs/distributed.md.
"""

from __future__ import annotations

import os
from typing import Any

from lmforge.launch.plan import LaunchPlan, plan_launch
from lmforge.launch.torchrun import relaunch


def launch_if_needed(cfg: Any, argv: list[str]) -> int | None:
    """Re-launch ``lmforge <argv>`` under torchrun when the environment or the GPUs ask for it:
    returns the job's exit code, or None to train in this process."""
    plan = plan_launch(os.environ, _gpu_count(), cfg.train.rdzv_timeout)
    return None if plan is None else relaunch(plan, argv, cfg.train.output_dir)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


__all__ = ["LaunchPlan", "launch_if_needed", "plan_launch", "relaunch"]
