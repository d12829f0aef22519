"""Experiment trackers from ``report_to`` (+ ``use_swanlab``), offline or local unless asked otherwise.

We build transformers' own tracker callbacks ourselves (subclasses that only override their public
``setup``/``on_train_end``) instead of passing ``report_to`` to TrainingArguments (which gets
``report_to="none"``), because:

- the defaults keep every byte inside output_dir and need no account: wandb ``offline`` under
  output_dir/wandb, MLflow file store output_dir/mlruns, SwanLab ``offline`` under
  output_dir/swanlog, TensorBoard output_dir/runs. A user's own WANDB_*/MLFLOW_* variables win;
- transformers' callbacks take no arguments and read the environment. wandb and SwanLab are
  initialised by us with their own arguments before the callback's ``setup`` (which then reuses the
  run; swanlab 0.10.3 crashes under transformers' own init), so nothing is put in the environment
  for them. MLflow has no such door: its defaults go in the environment in ``setup`` and come out in
  ``on_train_end``; when training raises, ``run_training``'s process-state scope
  (train/isolation.py) restores the environment and ``finish_runs_opened_since`` closes the run;
- each run is finished when training ends, so the next run in the same process starts its own.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.integrations import MLflowCallback, SwanLabCallback, TensorBoardCallback, WandbCallback

from lmforge.errors import LmforgeError

SUPPORTED = ("tensorboard", "wandb", "swanlab", "mlflow")
PACKAGE = {"tensorboard": "tensorboard", "wandb": "wandb", "swanlab": "swanlab", "mlflow": "mlflow"}
SWANLAB_MODES = {"offline": "offline", "local": "local", "cloud": "online", "disabled": "disabled"}


def requested_trackers(cfg: Any) -> list[str]:
    """The trackers a config asks for, validated (unknown names and missing packages are errors)."""
    names: list[str] = []
    for raw in cfg.train.report_to:
        names += [part.strip().lower() for part in str(raw).split(",") if part.strip()]
    if "all" in names:
        names = [name for name in SUPPORTED if importlib.util.find_spec(PACKAGE[name]) is not None]
    trackers_cfg = getattr(cfg, "trackers", None)
    if trackers_cfg is not None and trackers_cfg.use_swanlab:
        names.append("swanlab")
    chosen: list[str] = []
    for name in names:
        if name == "none" or name in chosen:
            continue
        if name not in SUPPORTED:
            raise LmforgeError(f"report_to: unknown tracker {name!r}", f"use one of: none, {', '.join(SUPPORTED)}")
        if importlib.util.find_spec(PACKAGE[name]) is None:
            pip = "mlflow-skinny" if name == "mlflow" else name
            raise LmforgeError(f"report_to: {name} is not installed", f"pip install {pip}, or remove it from report_to")
        chosen.append(name)
    return chosen


class WandbTracker(WandbCallback):
    """wandb, offline under output_dir unless WANDB_MODE/WANDB_DIR/WANDB_PROJECT say otherwise."""

    def __init__(self, output_dir: Path) -> None:
        super().__init__()
        self.output_dir = output_dir

    def setup(self, args: Any, state: Any, model: Any, **kwargs: Any) -> None:
        import wandb

        if state.is_world_process_zero and wandb.run is None:
            wandb.init(
                project=os.environ.get("WANDB_PROJECT", "lmforge"),
                dir=os.environ.get("WANDB_DIR", str(self.output_dir)),
                mode=os.environ.get("WANDB_MODE", "offline"),
                name=args.run_name,
                settings=wandb.Settings(silent=True),
            )
        super().setup(args, state, model, **kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import wandb

        super().on_train_end(args, state, control, **kwargs)
        if state.is_world_process_zero and wandb.run is not None:
            wandb.finish()  # flushes the offline run directory


class SwanLabTracker(SwanLabCallback):
    """SwanLab, initialised with our project, name, mode and log directory."""

    def __init__(self, project: str, name: str, mode: str, log_dir: str) -> None:
        super().__init__()
        self.init_args = {"project": project, "name": name, "mode": mode, "log_dir": log_dir}

    def setup(self, args: Any, state: Any, model: Any, **kwargs: Any) -> None:
        import swanlab

        if state.is_world_process_zero and not swanlab.has_run():
            swanlab.init(**self.init_args)
        super().setup(args, state, model, **kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import swanlab

        super().on_train_end(args, state, control, **kwargs)
        if state.is_world_process_zero and swanlab.has_run():
            swanlab.finish()


class MlflowTracker(MLflowCallback):
    """MLflow with a file store under output_dir; its environment defaults live for one run.

    Variables MLflow sets itself while running (MLFLOW_EXPERIMENT_ID) are removed with ours.
    """

    PREFIX = "MLFLOW_"

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__()
        self.env = env
        self._saved: dict[str, str] | None = None

    def setup(self, args: Any, state: Any, model: Any) -> None:
        self._saved = {k: v for k, v in os.environ.items() if k.startswith(self.PREFIX)}
        for key, value in self.env.items():
            os.environ.setdefault(key, value)
        super().setup(args, state, model)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        super().on_train_end(args, state, control, **kwargs)
        if self._saved is None:
            return
        for key in [k for k in os.environ if k.startswith(self.PREFIX)]:
            if key not in self._saved:
                del os.environ[key]
        os.environ.update(self._saved)
        self._saved = None


def tracker_callbacks(cfg: Any) -> list[TrainerCallback]:
    """One callback per requested tracker; empty for ``report_to: none``."""
    output_dir = Path(cfg.train.output_dir).resolve()
    callbacks: list[TrainerCallback] = []
    for name in requested_trackers(cfg):
        if name == "tensorboard":
            callbacks.append(TensorBoardCallback())
        elif name == "wandb":
            callbacks.append(WandbTracker(output_dir))
        elif name == "mlflow":
            env = {
                "MLFLOW_TRACKING_URI": (output_dir / "mlruns").as_uri(),
                "MLFLOW_ALLOW_FILE_STORE": "true",  # mlflow 3.x refuses file: stores without it
                "MLFLOW_EXPERIMENT_NAME": "lmforge",
                "MLFLOW_DISABLE_TELEMETRY": "true",
            }
            callbacks.append(MlflowTracker(env))
        elif name == "swanlab":
            trackers_cfg = getattr(cfg, "trackers", None)
            project = trackers_cfg.swanlab_project if trackers_cfg else "lmforge"
            run_name = (trackers_cfg.swanlab_run_name if trackers_cfg else None) or output_dir.name
            mode = SWANLAB_MODES[trackers_cfg.swanlab_mode if trackers_cfg else "offline"]
            callbacks.append(SwanLabTracker(project, run_name, mode, str(output_dir / "swanlog")))
    return callbacks


def open_runs() -> dict[str, Any]:
    """The tracker runs open in this process now (wandb, SwanLab, MLflow), for modules already imported."""
    runs: dict[str, Any] = {}
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        runs["wandb"] = wandb.run
    swanlab = sys.modules.get("swanlab")
    if swanlab is not None and swanlab.has_run():
        runs["swanlab"] = swanlab.get_run()
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None and hasattr(mlflow, "active_run") and mlflow.active_run() is not None:
        runs["mlflow"] = mlflow.active_run().info.run_id
    return runs


def finish_runs_opened_since(before: dict[str, Any]) -> None:
    """Finish, as failed, tracker runs opened after ``before`` was taken (a run that raised never
    reached ``on_train_end``); runs the caller had open before are left alone."""
    for name, run in open_runs().items():
        if before.get(name) is run or before.get(name) == run:
            continue
        if name == "wandb":
            sys.modules["wandb"].finish(exit_code=1)
        elif name == "swanlab":
            sys.modules["swanlab"].finish(state="crashed")
        elif name == "mlflow":
            sys.modules["mlflow"].end_run(status="FAILED")
