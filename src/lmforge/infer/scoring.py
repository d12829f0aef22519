"""A reward model served for scoring: ``lmforge api`` with ``stage: rm`` answers
``POST /v1/score/evaluation`` (LLaMA-Factory's route and shapes) instead of generating.

Each message is one text, already rendered (use the chat template the reward model was trained
with, e.g. ``tokenizer.apply_chat_template``); its score is the model's output at its last token,
exactly as ``AutoModelForSequenceClassification`` gives it. A LoRA reward model (adapter + score
head) is merged into its base on load.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from lmforge.config import RunConfig


class RewardScorer:
    """The scoring counterpart of an Engine: ``score(texts)``, ``model_name``, ``close()``."""

    serves_scores = True

    def __init__(self, cfg: RunConfig) -> None:
        from lmforge.models.loader import load_model
        from lmforge.models.tokenizer import load_tokenizer

        self.tokenizer = load_tokenizer(cfg.model, folder=_last_adapter(cfg))
        self.model = load_model(cfg.model, self.tokenizer, head="seq_cls")
        self.model_name = cfg.model.model_name_or_path
        self.max_length = cfg.data.cutoff_len
        self._lock = threading.Lock()  # one forward at a time: requests arrive on several threads

    def score(self, texts: list[str], max_length: int | None = None) -> list[float]:
        limit = max_length or self.max_length
        scores = []
        with self._lock, torch.no_grad():
            for text in texts:  # one row each: no padding, so the last token is the text's own
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][-limit:]
                device = next(self.model.parameters()).device
                logits = self.model(input_ids=torch.tensor([ids], device=device)).logits
                scores.append(round(float(logits[0, 0]), 6))
        return scores

    def close(self) -> None:
        return None


def _last_adapter(cfg: RunConfig) -> str | None:
    adapters = cfg.model.adapter_name_or_path or []
    return adapters[-1] if adapters else None


def build_scorer(cfg: RunConfig) -> Any:
    return RewardScorer(cfg)
