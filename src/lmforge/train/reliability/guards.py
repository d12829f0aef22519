"""Guards that stop a run early with a message that says what to do: NaN/Inf loss, a reused output_dir.

transformers' default (``logging_nan_inf_filter``) hides a non-finite loss from the logs and keeps
training on NaN weights; by the time anyone looks, every later checkpoint is garbage. Here the
first non-finite micro-batch loss either stops the run, naming the step, or, with
``skip_nonfinite_steps: true``, drops that whole optimiser step: gradients are set to None, so
``optimizer.step()`` leaves weights and Adam moments untouched (the LR schedule still advances).
Several processes agree: a non-finite loss on any rank stops (or skips the step on) every rank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lmforge.errors import LmforgeError

# Files a finished or interrupted lmforge/transformers run leaves; any of them means "holds a run".
RUN_MARKERS = (
    "run_config.yaml",
    "trainer_log.jsonl",
    "trainer_state.json",
    "run_manifest.json",
    "all_results.json",
    # weights count too: a model directory saved by any tool is someone's work
    "adapter_model.safetensors",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
)


class NonFiniteLossGuard:
    """Checks each micro-batch loss; raises or poisons the current optimiser step."""

    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.skipped_steps = 0
        self._poisoned_step: int | None = None

    def check(self, loss: torch.Tensor, model: torch.nn.Module, step: int, epoch: float | None) -> None:
        """``step`` is the optimiser step being computed (global_step + 1), as logs number it."""
        from lmforge.distributed import max_across_ranks, world_size
        from lmforge.distributed import rank as this_rank

        # Agreed across ranks (one tiny all-reduce): a NaN on one rank stops or skips on all of them.
        bad_rank = max_across_ranks(-1 if bool(torch.isfinite(loss).all()) else this_rank())
        finite = bad_rank < 0
        if finite and self._poisoned_step != step:
            return
        if not self.skip:
            where = f"step {step}" + (f" (epoch {epoch:.2f})" if epoch is not None else "")
            where += f" on rank {bad_rank}" if world_size() > 1 else ""
            raise LmforgeError(
                f"training loss is {loss.item() if world_size() <= 1 else 'not finite'} at {where}; "
                "stopped so no checkpoint holds NaN weights",
                "lower learning_rate, check the data of this step, use bf16 instead of fp16, "
                "or set skip_nonfinite_steps: true to skip such steps",
            )
        if self._poisoned_step != step:
            self._poisoned_step = step
            self.skipped_steps += 1
            print(f"lmforge: non-finite loss at step {step}: skipping this optimiser step", flush=True)
        # Later micro-batches of a poisoned step still run (collectives stay in step) but add nothing.
        model.zero_grad(set_to_none=True)


def holds_run(path: Path) -> bool:
    """True when ``path`` has outputs of an earlier run (logs, state, weights or checkpoints)."""
    if not path.is_dir():
        return False
    if any((path / name).exists() for name in RUN_MARKERS):
        return True
    return any(child.name.startswith("checkpoint-") for child in path.iterdir())


def check_output_dir(cfg: Any, resuming: bool) -> None:
    """Refuse to train into an output_dir holding another run, unless asked to overwrite or resume.

    Call before any weight is loaded; it writes nothing. ``resuming`` is True when a checkpoint
    from this output_dir will be resumed (then the directory is expected to hold a run).
    """
    output_dir = Path(cfg.train.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise LmforgeError(f"output_dir {output_dir} is a file, not a directory", "choose another output_dir")
    if resuming or cfg.train.overwrite_output_dir or not holds_run(output_dir):
        return
    raise LmforgeError(
        f"output_dir {output_dir} already holds a training run",
        "set overwrite_output_dir: true to replace it, resume_from_checkpoint: auto (or --resume) "
        "to continue it, or choose another output_dir",
    )
