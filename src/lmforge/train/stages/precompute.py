"""Reference log-probabilities scored once before training (``precompute_ref_log_probs``).

Runs on the weights just loaded, before the trainer exists and before a resume loads checkpoint
weights, so a resumed run scores against the same reference. With LoRA the adapter is disabled
(the base); a full fine-tune scores with the policy itself, which is still the starting model, so
no reference copy stays in memory during training.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from lmforge.train.stages import StageParts
from lmforge.train.stages.preference import adapter_disabled, sequence_logps


def _score(model: Any, dataset: Any, collator: Any, batch_size: int, device: Any) -> tuple[list[float], list[float]]:
    first: list[float] = []
    second: list[float] = []
    was_training = model.training
    model.eval()
    base = adapter_disabled(model) if hasattr(model, "disable_adapter") else contextlib.nullcontext()
    try:
        with base, torch.no_grad():
            for start in range(0, len(dataset), batch_size):
                rows = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
                batch = {k: v.to(device) for k, v in collator(rows).items()}
                logps, _ = sequence_logps(model, batch)
                n = logps.shape[0] // 2
                first += logps[:n].tolist()
                second += logps[n:].tolist()
    finally:
        model.train(was_training)
    return first, second


def add_reference_columns(parts: StageParts, collator: Any, names: tuple[str, str]) -> None:
    """Adds the two reference columns to the train (and eval) set of ``parts.data``."""
    reference = parts.models.pop("reference", None) or parts.model  # not kept once scored
    device = parts.args.device
    reference.to(device)
    batch_size = parts.args.per_device_eval_batch_size
    for split in ("train", "eval"):
        dataset = getattr(parts.data, split)
        if dataset is None:
            continue
        first, second = _score(reference, dataset, collator, batch_size, device)
        setattr(parts.data, split, dataset.add_column(names[0], first).add_column(names[1], second))
