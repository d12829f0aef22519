"""Batching tokenized rows for the Trainer: right padding with the pad token and -100 labels.

For neat packing the batch carries ``position_ids`` and no ``attention_mask``: transformers builds the
block-diagonal mask from the position restarts only when the mask is absent. Padding then gets
position 0 on every pad token, so each pad is its own one-token "sample" and cannot disturb real ones
(it also sits after them, which causal attention already hides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from lmforge.data.processors import IGNORE_INDEX


@dataclass
class PaddingCollator:
    pad_token_id: int
    with_attention_mask: bool = True
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
        has_positions = "position_ids" in features[0]
        if has_positions:
            batch["position_ids"] = []
        if self.with_attention_mask:
            batch["attention_mask"] = []
        for f in features:
            n = len(f["input_ids"])
            pad = longest - n
            batch["input_ids"].append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            batch["labels"].append(list(f["labels"]) + [IGNORE_INDEX] * pad)
            if has_positions:
                batch["position_ids"].append(list(f["position_ids"]) + [0] * pad)
            if self.with_attention_mask:
                batch["attention_mask"].append([1] * n + [0] * pad)
        return {key: torch.tensor(value, dtype=torch.long) for key, value in batch.items()}


def build_collator(cfg: Any, tokenizer: Any) -> PaddingCollator:
    """The collator for ``cfg``'s data: attention_mask is left out exactly when neat packing is on."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return PaddingCollator(pad_token_id=pad, with_attention_mask=not cfg.data.neat_packing)


def _pad_rows(rows: list[tuple[list[int], list[int]]], pad_token_id: int) -> dict[str, torch.Tensor]:
    longest = max(len(ids) for ids, _ in rows)
    input_ids, labels, mask = [], [], []
    for ids, labs in rows:
        pad = longest - len(ids)
        input_ids.append(list(ids) + [pad_token_id] * pad)
        labels.append(list(labs) + [IGNORE_INDEX] * pad)
        mask.append([1] * len(ids) + [0] * pad)
    return {
        "input_ids": torch.tensor(input_ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
    }


@dataclass
class PairwiseCollator:
    """rm / dpo: one batch of ``2n`` rows, the n chosen answers first, then the n rejected ones in the
    same order, so one forward pass scores both and the step metrics count every token processed.
    Precomputed reference log-probabilities (``ref_chosen_logps`` / ``ref_rejected_logps``) pass through."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows = [(f["chosen_input_ids"], f["chosen_labels"]) for f in features]
        rows += [(f["rejected_input_ids"], f["rejected_labels"]) for f in features]
        batch = _pad_rows(rows, self.pad_token_id)
        for key in ("ref_chosen_logps", "ref_rejected_logps"):
            if key in features[0]:
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.float32)
        return batch


@dataclass
class FeedbackCollator:
    """kto: ``2n`` rows, the n labelled answers first, then their n mismatched (KL) rows, plus the
    boolean ``kto_label`` of each answer; precomputed ``ref_logps`` / ``ref_kl_logps`` pass through."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows = [(f["input_ids"], f["labels"]) for f in features]
        rows += [(f["kl_input_ids"], f["kl_labels"]) for f in features]
        batch = _pad_rows(rows, self.pad_token_id)
        batch["kto_label"] = torch.tensor([bool(f["kto_label"]) for f in features], dtype=torch.bool)
        for key in ("ref_logps", "ref_kl_logps"):  # precompute_ref_log_probs
            if key in features[0]:
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.float32)
        return batch


def pad_token_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
