"""``CheckpointWriter``: transformers writes ``checkpoint-N``; this callback makes it trustworthy.

The guarantee: an interrupted save never becomes the checkpoint ``auto`` resumes from, and no
checkpoint holds a pickle. transformers' own save is used as is (DeepSpeed, FSDP and PEFT saving
stay upstream's); around it, through public hooks only:

1. ``before_save(args, checkpoint, model)`` — called by ``ReliableTrainerMixin.save_model`` just
   before transformers writes ``checkpoint-N``. It removes that folder's completion marker (a re-save
   of the same step, e.g. at an epoch end right after a step save, is not trusted while it is being
   rewritten), checks the disk has room, and holds back transformers' rotation: transformers deletes
   old checkpoints inside its save, before ``on_save`` runs, so with ``save_total_limit: 1`` a kill
   in between would leave no complete checkpoint. ``args.save_total_limit`` is None only for the
   length of that save.
2. ``on_save`` — the save is on disk. ``complete(checkpoint, args, state)`` replaces the pickled
   ``training_args.bin`` by ``training_args.json``, gives the files the umask's permissions,
   fsyncs them and then writes the marker ``lmforge_complete.json`` (step and file list) last;
   ``rotate(run_dir, state)`` then applies ``save_total_limit`` to complete checkpoints only.

Extending it (later issues): subclass and pass ``checkpoint_writer=`` to the mixin. Best-model
tracking reads ``state.best_model_checkpoint`` in ``rotate`` (kept, like upstream); a background
("flash") save overrides ``complete`` to copy the folder off the training thread and write the
marker when the copy is flushed — ``auto`` resume never sees it before then. Keep the order:
marker last, rotation after the marker.

Cost: one fsync pass per save (seconds for multi-GB checkpoints on slow disks).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from lmforge.atomic import apply_umask_tree, atomic_write_json, atomic_write_text, fsync_dir, fsync_tree
from lmforge.distributed import raise_agreed
from lmforge.errors import LmforgeError
from lmforge.train.reliability.checkpoints import (
    COMPLETE_MARKER,
    check_disk_space,
    checkpoint_step,
    estimate_checkpoint_bytes,
    is_complete_checkpoint,
)

logger = logging.getLogger(__name__)
PICKLED_ARGS = "training_args.bin"
ARGS_JSON = "training_args.json"


def replace_pickled_args(folder: Path, args: Any) -> None:
    """transformers pickles TrainingArguments into training_args.bin; loading a pickle runs code,
    so we keep none and write the same arguments as JSON."""
    (folder / PICKLED_ARGS).unlink(missing_ok=True)
    atomic_write_text(folder / ARGS_JSON, args.to_json_string())


class CheckpointWriter(TrainerCallback):
    """Marks each ``checkpoint-N`` complete after transformers saved it; rotates complete ones."""

    def __init__(self) -> None:
        self.save_total_limit: int | None = None
        self._held = False
        self._pending: Path | None = None

    def before_save(self, args: Any, checkpoint: Path, model: Any) -> None:
        self._pending = checkpoint
        raise_agreed(_disk_problem(args, checkpoint, model))  # before anything of the last save changes
        if args.should_save:
            marker = checkpoint / COMPLETE_MARKER
            if marker.exists():
                marker.unlink()
                fsync_dir(checkpoint)
        self._hold_rotation(args)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._release_rotation(args)
        checkpoint = self._pending or Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self._pending = None
        _wait_for_every_rank(args)  # every rank's shards are written before rank 0 marks
        if not args.should_save or not checkpoint.is_dir():
            return
        self.complete(checkpoint, args, state)
        self.rotate(checkpoint.parent, state)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # A resumed run: transformers keeps the checkpoint's save/logging/eval intervals (with a
        # warning); the user's new ones are honoured instead.
        state.compute_steps(args, state.max_steps)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._release_rotation(args)  # a save that never reached on_save (Ray Tune's) gives it back

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._release_rotation(args)

    def complete(self, checkpoint: Path, args: Any, state: Any) -> None:
        """Publish ``checkpoint``: no pickles, umask permissions, flushed, then the marker."""
        replace_pickled_args(checkpoint, args)
        apply_umask_tree(checkpoint)
        fsync_tree(checkpoint)
        files = sorted(str(p.relative_to(checkpoint)) for p in checkpoint.rglob("*") if p.is_file())
        atomic_write_json(checkpoint / COMPLETE_MARKER, {"step": state.global_step, "files": files}, indent=1)
        fsync_dir(checkpoint)

    def rotate(self, run_dir: Path, state: Any) -> None:
        """Keep the newest ``save_total_limit`` complete checkpoints (and the best one).

        Folders without the marker older than the newest complete checkpoint are removed too: they
        are saves killed midway, and nothing resumes from them. Newer ones are left for the next
        save of that step to rewrite.
        """
        if self.save_total_limit is None or self.save_total_limit <= 0:
            return
        found = sorted(
            (step, child)
            for child in run_dir.iterdir()
            if child.is_dir() and (step := checkpoint_step(child)) is not None
        )
        complete = [path for _, path in found if is_complete_checkpoint(path)]
        if not complete:
            return
        best = state.best_model_checkpoint
        keep = set(complete[-self.save_total_limit :])
        if best is not None:
            keep.add(Path(best))
        newest_step = checkpoint_step(complete[-1]) or 0
        for step, path in found:
            torn = path not in complete and step < newest_step
            if path not in keep and (path in complete or torn):
                logger.info("deleting older checkpoint %s (save_total_limit: %s)", path, self.save_total_limit)
                shutil.rmtree(path, ignore_errors=True)

    def _hold_rotation(self, args: Any) -> None:
        if not self._held:
            self.save_total_limit = args.save_total_limit
            args.save_total_limit = None
            self._held = True

    def _release_rotation(self, args: Any) -> None:
        if self._held:
            args.save_total_limit = self.save_total_limit
            self._held = False


def _disk_problem(args: Any, checkpoint: Path, model: Any) -> LmforgeError | None:
    """This rank's lack of room for its part of the save: the whole checkpoint on the saving rank,
    a 1/world_size shard on the other ranks of a sharded run (DeepSpeed, FSDP), nothing elsewhere."""
    world = max(getattr(args, "world_size", 1), 1)
    sharded = bool(getattr(args, "deepspeed", None) or getattr(args, "fsdp", None))
    if not (args.should_save or sharded):
        return None
    needed = estimate_checkpoint_bytes(model, not args.save_only_model)
    try:
        check_disk_space(checkpoint.parent, needed if args.should_save else needed // world, checkpoint.name)
    except LmforgeError as problem:
        return problem
    return None


def _wait_for_every_rank(args: Any) -> None:
    if getattr(args, "world_size", 1) > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()
