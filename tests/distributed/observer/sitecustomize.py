"""Observer for multi-process tests, imported by every worker at start-up (PYTHONPATH).

It watches the real run and records, per rank, into $LMFORGE_OBSERVE (nothing when unset or in
the launcher): the files opened for writing, created, renamed or removed under $LMFORGE_OBSERVE_OUT
(a Python audit hook), and the decoded samples of each training step. ``LMFORGE_OBSERVE_SIGTERM``
= "rank:step" makes that rank send itself SIGTERM in that step; ``LMFORGE_OBSERVE_NAN`` = "rank:step"
makes that rank's loss NaN in that step (the guard sees it as a real NaN); ``LMFORGE_OBSERVE_FULL_DISK``
= "rank:step" makes the disk under $LMFORGE_OBSERVE_OUT look full to that rank from that step on;
``LMFORGE_OBSERVE_STALL`` = "rank:step:seconds" makes that rank sleep that long in that step (a
SIGTERM, the launcher's teardown, ends it).
Every process started with it on PYTHONPATH (launchers too) prints all its threads' stacks on
SIGUSR2 (faulthandler), so a test that times out can show where each process waits.
"""

import atexit
import faulthandler
import importlib.abc
import importlib.machinery
import json
import os
import sys

_DIR = os.environ.get("LMFORGE_OBSERVE")
_RANK = os.environ.get("RANK")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _install() -> None:
    out = os.path.abspath(os.environ["LMFORGE_OBSERVE_OUT"])
    writes: list[str] = []
    steps: list[list[str]] = []

    def audit(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and isinstance(path, str | bytes) and os.path.abspath(os.fsdecode(path)).startswith(out):
                writes.append(os.fsdecode(path))
        elif event in {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "shutil.rmtree"}:
            path = args[0]
            if isinstance(path, str | bytes) and os.path.abspath(os.fsdecode(path)).startswith(out):
                writes.append(f"{event} {os.fsdecode(path)}")

    sys.addaudithook(audit)
    _fill_disk(out, steps)

    def dump() -> None:
        with open(os.path.join(_DIR, f"rank{_RANK}.json"), "w") as handle:
            json.dump({"writes": writes, "steps": steps}, handle)

    atexit.register(dump)

    def patch(module) -> None:
        mixin = module.ReliableTrainerMixin
        step_fn = mixin.training_step
        check = module.NonFiniteLossGuard.check

        def training_step(self, model, inputs, num_items_in_batch=None):
            step = self.state.global_step + 1
            tokenizer = self.processing_class
            pad = tokenizer.pad_token_id
            rows = [tokenizer.decode([t for t in row if t != pad]) for row in inputs["input_ids"].tolist()]
            steps.append([str(step), *rows])
            stall_rank, _, stall = os.environ.get("LMFORGE_OBSERVE_STALL", "").partition(":")
            if stall_rank == _RANK and stall.partition(":")[0] == str(step):
                import signal
                import time

                def leave(signum, frame):  # the launcher tearing the job down ends the stall
                    raise SystemExit(128 + signum)

                previous = signal.signal(signal.SIGTERM, leave)
                time.sleep(float(stall.partition(":")[2]))
                signal.signal(signal.SIGTERM, previous)
            if os.environ.get("LMFORGE_OBSERVE_SIGTERM") == f"{_RANK}:{step}":
                import signal

                os.kill(os.getpid(), signal.SIGTERM)
            dump()
            return step_fn(self, model, inputs, num_items_in_batch)

        def guarded(self, loss, model, step, epoch):
            if os.environ.get("LMFORGE_OBSERVE_NAN") == f"{_RANK}:{step}":
                loss = loss * float("nan")
            return check(self, loss, model, step, epoch)

        mixin.training_step = training_step
        module.NonFiniteLossGuard.check = guarded

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "lmforge.train.reliability.trainer_mixin":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                patch(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Finder())


def _fill_disk(out: str, steps: list[list[str]]) -> None:
    import shutil

    wanted = os.environ.get("LMFORGE_OBSERVE_FULL_DISK", "")
    rank, _, step = wanted.partition(":")
    if rank != _RANK:
        return
    usage = shutil.disk_usage

    def disk_usage(path):
        real = usage(path)
        full = steps and int(steps[-1][0]) >= int(step) and os.path.abspath(os.fsdecode(path)).startswith(out)
        return real._replace(free=0) if full else real

    shutil.disk_usage = disk_usage


if hasattr(faulthandler, "register"):
    import signal as _signal

    faulthandler.register(_signal.SIGUSR2, all_threads=True)
if _DIR and _RANK is not None:
    _install()
