"""training_loss.png: the loss curve (raw and smoothed) and eval loss, drawn from trainer_log.jsonl."""

from __future__ import annotations

import json
import math
from pathlib import Path

PLOT_NAME = "training_loss.png"


def _smooth(values: list[float]) -> list[float]:
    """Exponential moving average, the TensorBoard-style smoothing users know; its weight grows
    with the number of points (0.2 for 10, 0.8 for 100+), so a short run's curve does not lag."""
    weight = 1.8 * (1 / (1 + math.exp(-0.05 * len(values))) - 0.5)
    smoothed, last = [], values[0] if values else 0.0
    for value in values:
        last = last * weight + (1 - weight) * value
        smoothed.append(last)
    return smoothed


def plot_loss(output_dir: str | Path, log_name: str = "trainer_log.jsonl") -> Path | None:
    """Draw the curves; returns the picture's path, or None when nothing was logged."""
    # A Figure of its own (no pyplot): the process' matplotlib backend is never switched.
    from matplotlib.figure import Figure

    log = Path(output_dir) / log_name
    if not log.exists():
        return None
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
    if not train and not evals:
        return None
    fig = Figure(figsize=(7, 4), dpi=110)
    ax = fig.subplots()
    if train:
        steps, losses = zip(*train)
        ax.plot(steps, losses, color="#9ab", alpha=0.6, label="loss")
        ax.plot(steps, _smooth(list(losses)), color="#1f5fa8", label="loss (smoothed)")
    if evals:
        steps, losses = zip(*evals)
        ax.plot(steps, losses, "o-", color="#c0392b", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"training loss of {Path(output_dir).name}")
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(output_dir) / PLOT_NAME
    fig.tight_layout()
    fig.savefig(path)
    return path
