"""Callbacks any stage shares: the JSONL log, the loss plot and the step-target guard for resumes."""

from lmforge.train.callbacks.log_jsonl import JsonlLogCallback
from lmforge.train.callbacks.plot import plot_loss
from lmforge.train.callbacks.target import StopAtTargetCallback, TargetAlreadyReached

__all__ = ["JsonlLogCallback", "StopAtTargetCallback", "TargetAlreadyReached", "plot_loss"]
