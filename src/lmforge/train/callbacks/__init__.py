"""Callbacks any stage shares: the JSONL log and the loss plot."""

from lmforge.train.callbacks.log_jsonl import JsonlLogCallback
from lmforge.train.callbacks.plot import plot_loss

__all__ = ["JsonlLogCallback", "plot_loss"]
