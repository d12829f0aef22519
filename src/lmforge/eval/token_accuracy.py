"""``compute_accuracy``: token accuracy at trained positions, reported at every evaluation.

For each eval row, the share of trained positions (labels not -100) where the model's most likely
next token is the label, then the mean over rows (LLaMA-Factory's ``ComputeAccuracy``, so the
numbers compare). Only the argmax of each position leaves the forward pass
(``preprocess_logits_for_metrics``): the Trainer keeps ids, not ``[rows, length, vocab]`` logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmforge.config import RunConfig
from lmforge.errors import LmforgeError

IGNORE_INDEX = -100


def check_compute_accuracy(cfg: RunConfig) -> None:
    """compute_accuracy is measured at evaluations: refuse it where there are none."""
    if not cfg.eval.compute_accuracy:
        return
    if cfg.method.stage not in ("pt", "sft"):
        raise LmforgeError(
            f"compute_accuracy is a next-token accuracy of stages pt and sft (stage is {cfg.method.stage!r})",
            "remove compute_accuracy",
        )
    if cfg.train.eval_strategy == "no" and not cfg.train.do_eval:
        raise LmforgeError(
            "compute_accuracy is measured at evaluations, and this run has none",
            "set eval_strategy: steps (with eval_steps) or epoch, or do_eval: true",
        )


def trainer_metric_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """The Trainer keyword arguments that add token accuracy to eval metrics (none when off)."""
    if not cfg.eval.compute_accuracy:
        return {}
    return {"compute_metrics": token_accuracy, "preprocess_logits_for_metrics": argmax_logits}


def argmax_logits(logits: Any, labels: Any) -> Any:
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    return logits.argmax(dim=-1)


def token_accuracy(eval_prediction: Any) -> dict[str, float]:
    """``{"accuracy": mean over rows}``; position t predicts label t+1, rows with nothing trained are skipped."""
    predictions, labels = np.asarray(eval_prediction.predictions), np.asarray(eval_prediction.label_ids)
    scores = []
    for predicted, label in zip(predictions, labels):
        predicted, label = predicted[:-1], label[1:]
        trained = label != IGNORE_INDEX
        if trained.any():
            scores.append(float(np.mean(predicted[trained] == label[trained])))
    return {"accuracy": float(np.mean(scores)) if scores else 0.0}
