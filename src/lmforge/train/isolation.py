"""``process_state_scope``: what a training run changes process-wide is put back when it ends.

Two runs in one process (the tests, a web UI running several jobs) must not leak into each other,
also when the first one raises. A run changes, through lmforge or the libraries it drives:

- signal handlers (SIGTERM/SIGINT save-and-stop, signals.py; trackers install their own);
- the environment (MLflow's defaults and the variables it sets; accelerate's and trackers' own);
- logging: transformers' Trainer sets its verbosity from ``log_level``; libraries add handlers;
- warnings filters (and ``warnings.showwarning``);
- torch's intra-op thread count;
- tracker runs left open by a run that raised (they would swallow the next run's metrics).

Everything in that list is captured on entry and restored in a ``finally``. Loggers created during
the run (a library imported for the first time) are left as their module configured them: their
configuration belongs to the module, which stays imported. Signal handlers can only be set from the
main thread; a run in a worker thread never installs any (signals.py), so there is nothing to undo.

Runs in concurrent threads share one process state, and a scope restores what it saw on entry: a
web UI running jobs at the same time should give each its own process. Use it as a context manager
or a decorator (``@process_state_scope()``). Cost: a copy of
``os.environ`` and one pass over the existing loggers, microseconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lmforge.environ import restore_environ

# Signals a run or its libraries may take over; SIGKILL/SIGSTOP cannot be caught at all.
SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2") if hasattr(signal, name)
)


@dataclass
class LoggerState:
    level: int
    handlers: list[logging.Handler]
    propagate: bool
    disabled: bool

    @classmethod
    def of(cls, logger: logging.Logger) -> LoggerState:
        return cls(logger.level, list(logger.handlers), logger.propagate, logger.disabled)

    def apply(self, logger: logging.Logger) -> None:
        logger.setLevel(self.level)
        logger.handlers[:] = self.handlers
        logger.propagate = self.propagate
        logger.disabled = self.disabled


@dataclass
class ProcessState:
    """A snapshot of the process-wide state a run may change; ``restore`` puts it back."""

    environ: dict[str, str]
    signal_handlers: dict[int, Any]
    loggers: dict[str, LoggerState]
    logging_disable: int
    torch_threads: int | None
    tracker_runs: dict[str, Any] = field(default_factory=dict)
    environ_mapping: Any = None  # os.environ itself: datasets' map(num_proc=N) swaps in a copy

    @classmethod
    def capture(cls) -> ProcessState:
        from lmforge.train.reliability.trackers import open_runs

        return cls(
            environ=dict(os.environ),
            signal_handlers={signum: signal.getsignal(signum) for signum in SIGNALS},
            loggers={name: LoggerState.of(logger) for name, logger in _loggers().items()},
            logging_disable=logging.root.manager.disable,
            torch_threads=_torch_threads(),
            tracker_runs=open_runs(),
            environ_mapping=os.environ,
        )

    def restore(self) -> None:
        from lmforge.train.reliability.trackers import finish_runs_opened_since

        finish_runs_opened_since(self.tracker_runs)
        restore_environ(os.environ if self.environ_mapping is None else self.environ_mapping, self.environ)
        if threading.current_thread() is threading.main_thread():
            for signum, handler in self.signal_handlers.items():
                if handler is not None and signal.getsignal(signum) is not handler:
                    signal.signal(signum, handler)
        current = _loggers()
        for name, state in self.loggers.items():
            if name in current:
                state.apply(current[name])
        logging.disable(self.logging_disable)
        if self.torch_threads is not None and _torch_threads() != self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)


@contextlib.contextmanager
def process_state_scope() -> Iterator[ProcessState]:
    """Capture the process-wide state, run the block, restore it (also when the block raises)."""
    state = ProcessState.capture()
    with warnings.catch_warnings():  # restores filters and showwarning on exit
        try:
            yield state
        finally:
            state.restore()


def _loggers() -> dict[str, logging.Logger]:
    found = {
        name: logger
        for name, logger in list(logging.root.manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
    }
    found[""] = logging.root
    return found


def _torch_threads() -> int | None:
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None
