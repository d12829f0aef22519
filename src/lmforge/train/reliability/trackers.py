"""Experiment trackers from ``report_to`` (+ ``use_swanlab``), offline or local unless asked otherwise.

We build transformers' own tracker callbacks ourselves instead of passing ``report_to`` to
TrainingArguments (which must get ``report_to="none"``), because:

- each tracker reads its settings from environment variables, and a run must not leave them set
  for the next run in the same process (web UI, tests). ``ScopedTracker`` sets them when training
  begins, creates the tracker then (MLflow reads the environment in its constructor) and restores
  them when training ends;
- the defaults keep every byte inside output_dir and need no account: wandb ``offline`` under
  output_dir/wandb, MLflow file store output_dir/mlruns, SwanLab ``offline`` under
  output_dir/swanlog, TensorBoard output_dir/runs. A user's own WANDB_*/MLFLOW_* variables win;
- swanlab 0.10.3 crashes under ``report_to="swanlab"`` unless ``swanlab.init`` ran first, so our
  SwanLab callback initialises it with our mode and directory, then lets transformers' log.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from lmforge.errors import LmforgeError

SUPPORTED = ("tensorboard", "wandb", "swanlab", "mlflow")
PACKAGE = {"tensorboard": "tensorboard", "wandb": "wandb", "swanlab": "swanlab", "mlflow": "mlflow"}
EVENTS = tuple(name for name in dir(TrainerCallback) if name.startswith("on_"))
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


class ScopedTracker(TrainerCallback):
    """Creates a tracker callback when training begins, with environment defaults set only until it ends."""

    def __init__(
        self, name: str, factory: Callable[[], TrainerCallback], env: dict[str, str], restore_prefix: str = ""
    ) -> None:
        self.name = name
        self.factory = factory
        self.env = env
        # Variables the library itself sets while running (MLflow: MLFLOW_EXPERIMENT_ID) are undone too.
        self.restore_prefix = restore_prefix
        self.inner: TrainerCallback | None = None
        self._saved: dict[str, str | None] = {}

    def _forward(self, event: str, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if event == "on_train_begin":
            self._saved = {key: os.environ.get(key) for key in self.env}
            if self.restore_prefix:
                self._saved.update({k: v for k, v in os.environ.items() if k.startswith(self.restore_prefix)})
            for key, value in self.env.items():
                os.environ.setdefault(key, value)
            self.inner = self.factory()
        if self.inner is None:
            return None
        try:
            return getattr(self.inner, event)(args, state, control, **kwargs)
        finally:
            if event == "on_train_end":
                self._finish()

    def _finish(self) -> None:
        if self.restore_prefix:
            for key in [k for k in os.environ if k.startswith(self.restore_prefix) and k not in self._saved]:
                del os.environ[key]
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        finish = getattr(self.inner, "finish_run", None)
        if callable(finish):
            finish()
        self.inner = None


def _make_event(event: str) -> Callable[..., Any]:
    def handler(self: ScopedTracker, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        return self._forward(event, args, state, control, **kwargs)

    handler.__name__ = event
    return handler


for _event in EVENTS:
    setattr(ScopedTracker, _event, _make_event(_event))

# One class per tracker: transformers warns when two callbacks share a class, and names them by class.
TRACKER_CLASSES: dict[str, type[ScopedTracker]] = {
    name: type(f"{name.capitalize()}Tracker", (ScopedTracker,), {}) for name in SUPPORTED
}


def _wandb_callback() -> TrainerCallback:
    from transformers.integrations import WandbCallback

    class OfflineWandb(WandbCallback):
        def finish_run(self) -> None:
            if self._wandb is not None and self._wandb.run is not None:
                self._wandb.finish()  # flushes the offline run directory

    return OfflineWandb()


def _mlflow_callback() -> TrainerCallback:
    from transformers.integrations import MLflowCallback

    return MLflowCallback()


def _tensorboard_callback() -> TrainerCallback:
    from transformers.integrations import TensorBoardCallback

    return TensorBoardCallback()


def _swanlab_callback(project: str, name: str, mode: str, log_dir: str) -> Callable[[], TrainerCallback]:
    def build() -> TrainerCallback:
        from transformers.integrations import SwanLabCallback

        class InitialisedSwanLab(SwanLabCallback):
            def setup(self, args: Any, state: Any, model: Any, **kwargs: Any) -> None:
                if state.is_world_process_zero and not self._swanlab.has_run():
                    self._swanlab.init(project=project, name=name, mode=mode, log_dir=log_dir)
                super().setup(args, state, model, **kwargs)

            def finish_run(self) -> None:
                if self._swanlab.has_run():
                    self._swanlab.finish()

        return InitialisedSwanLab()

    return build


def tracker_callbacks(cfg: Any) -> list[TrainerCallback]:
    """One ScopedTracker per requested tracker; empty for ``report_to: none``."""
    output_dir = Path(cfg.train.output_dir).resolve()
    callbacks: list[TrainerCallback] = []
    for name in requested_trackers(cfg):
        if name == "tensorboard":
            callbacks.append(TRACKER_CLASSES[name](name, _tensorboard_callback, {}))
        elif name == "wandb":
            env = {
                "WANDB_MODE": "offline",
                "WANDB_DIR": str(output_dir),
                "WANDB_PROJECT": "lmforge",
                "WANDB_SILENT": "true",
            }
            callbacks.append(TRACKER_CLASSES[name](name, _wandb_callback, env))
        elif name == "mlflow":
            env = {
                "MLFLOW_TRACKING_URI": (output_dir / "mlruns").as_uri(),
                "MLFLOW_ALLOW_FILE_STORE": "true",  # mlflow 3.x refuses file: stores without it
                "MLFLOW_EXPERIMENT_NAME": "lmforge",
                "MLFLOW_DISABLE_TELEMETRY": "true",
            }
            callbacks.append(TRACKER_CLASSES[name](name, _mlflow_callback, env, restore_prefix="MLFLOW_"))
        elif name == "swanlab":
            trackers_cfg = getattr(cfg, "trackers", None)
            project = trackers_cfg.swanlab_project if trackers_cfg else "lmforge"
            run_name = (trackers_cfg.swanlab_run_name if trackers_cfg else None) or output_dir.name
            mode = SWANLAB_MODES[trackers_cfg.swanlab_mode if trackers_cfg else "offline"]
            factory = _swanlab_callback(project, run_name, mode, str(output_dir / "swanlog"))
            callbacks.append(TRACKER_CLASSES[name](name, factory, {}))
    return callbacks
