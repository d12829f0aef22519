"""SIGTERM/SIGINT during training: save at the next step boundary, then stop with a clear error.

Schedulers (Slurm, Kubernetes, spot instances) send SIGTERM some seconds before SIGKILL; Ctrl-C
sends SIGINT. Dying mid-step would lose everything since the last scheduled save, so the first
signal only sets a flag; at the next optimiser-step boundary the callback asks the Trainer to save
``checkpoint-<step>`` and stop. When training returns, ``on_train_end`` raises
``TrainingInterrupted`` (an LmforgeError, exit code 1 at the CLI) so the caller does not save
"final" weights of an unfinished run. A second signal exits at once with 128 + signal number;
the completion marker (writer.py) keeps the previous checkpoint the one resumed from even then.

Handlers are installed only while training and only from the main thread (Python allows no
other); a run started from a worker thread (the web UI) keeps the process' handlers.

DataLoader workers (``dataloader_num_workers`` > 0) ignore both signals (``keep_workers_running``):
a scheduler that signals the whole process group (Slurm's scancel, ``kill -TERM -PGID``, Ctrl-C in
a terminal) would otherwise kill them mid-step (torch's worker handler dies on a SIGTERM its parent
did not send), and the main process would fail with "DataLoader worker is killed by signal" instead
of saving. The main process still stops its workers as usual (a sentinel on their queue), and a
worker whose main process died exits through torch's watchdog.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from transformers import TrainerCallback

from lmforge.errors import LmforgeError

HANDLED = (signal.SIGTERM, signal.SIGINT)


def keep_workers_running(loader: Any) -> Any:
    """``loader`` with its worker processes ignoring SIGTERM/SIGINT (see the module docstring)."""
    base = getattr(loader, "base_dataloader", loader)  # accelerate's adapter forwards reads, not writes
    if getattr(base, "num_workers", 0) > 0:
        base.worker_init_fn = functools.partial(_ignore_stop_signals, base.worker_init_fn)
    return loader


def _ignore_stop_signals(init: Callable[[int], None] | None, worker_id: int) -> None:
    for signum in HANDLED:
        signal.signal(signum, signal.SIG_IGN)
    if init is not None:
        init(worker_id)


class TrainingInterrupted(LmforgeError):
    """Training stopped on a signal after saving; ``checkpoint`` is where to resume from."""

    def __init__(self, signame: str, step: int, checkpoint: str | None) -> None:
        saved = f"checkpoint saved to {checkpoint}" if checkpoint else "no checkpoint could be saved"
        super().__init__(
            f"training stopped by {signame} at step {step}; {saved}",
            "run the same command with --resume (or resume_from_checkpoint: auto) to continue",
        )
        self.signame = signame
        self.step = step
        self.checkpoint = checkpoint


class SignalCheckpointCallback(TrainerCallback):
    """Turns the first SIGTERM/SIGINT into save-and-stop at the next step; the second exits now.

    Put it last in the callback list: its ``on_train_end`` raises, so callbacks after it would
    not see the end of training.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.agreed: int | None = None  # a signal another rank received, agreed at a step boundary
        self._previous: dict[int, Any] = {}
        self._stopped_at: int | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            print(f"lmforge: second {name}: exiting now without saving", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.received = signum
        print(
            f"lmforge: {name} received: saving a checkpoint at the end of this step, then stopping "
            "(send it again to exit at once)",
            file=sys.stderr,
            flush=True,
        )

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.received = None
        self.agreed: int | None = None
        self._stopped_at = None
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from lmforge.distributed import max_across_ranks

        # Several processes: a signal to any rank stops every rank at this same step (one tiny
        # all-reduce per step), so all save the same checkpoint instead of one waiting at a barrier.
        agreed = max_across_ranks(self.received or 0)
        if agreed and self._stopped_at is None:
            self.agreed = agreed
            self._stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._restore()
        signum = self.received or self.agreed
        if signum is None:
            return
        if self._stopped_at is None:
            # The signal came after the last step: training is complete, let the final save run.
            print("lmforge: training had already finished; saving final outputs", file=sys.stderr, flush=True)
            return
        checkpoint = os.path.join(args.output_dir, f"checkpoint-{self._stopped_at}")
        saved = checkpoint if os.path.isdir(checkpoint) else None
        raise TrainingInterrupted(signal.Signals(signum).name, self._stopped_at, saved)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
