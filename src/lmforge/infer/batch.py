"""The rows decoded together: one left-padded KV cache, its attention mask, and each row's
pending token (sampled, not yet fed to the model).

Left padding keeps every row's newest token in the last column, so one decoding step serves all
rows. Correctness across rows of different lengths rests on three things: the attention mask hides
padding, ``position_ids`` count only real tokens, and merging pads the shorter cache on the left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache


@dataclass
class Batch:
    requests: list[Any]
    cache: DynamicCache
    mask: torch.Tensor  # [rows, cached columns], 1 = real token
    pending: torch.Tensor  # [rows] next input token of each row

    def __len__(self) -> int:
        return len(self.requests)

    def decode_inputs(self) -> dict[str, Any]:
        """Model inputs for one step: every row's pending token at its own position."""
        positions = self.mask.sum(1, keepdim=True)
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self), 1)], dim=1)
        return {
            "input_ids": self.pending[:, None],
            "attention_mask": self.mask,
            "position_ids": positions,
            "past_key_values": self.cache,
            "use_cache": True,
        }

    def select(self, keep: list[int]) -> None:
        """Keep only these rows, then drop leading columns that are padding in every row."""
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.requests = [self.requests[i] for i in keep]
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        self.pending = self.pending[index]
        real = self.mask.any(0).nonzero()
        start = int(real[0]) if len(real) else 0
        if start:
            self.mask = self.mask[:, start:]
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, start:]
                layer.values = layer.values[:, :, start:]

    def merge(self, other: Batch) -> None:
        """Append the rows of ``other``, left-padding whichever cache is shorter."""
        width = max(self.mask.size(1), other.mask.size(1))
        layers = []
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
            values = torch.cat([_pad_left(mine.values, width), _pad_left(theirs.values, width)])
            layers.append((keys, values))
        self.cache = DynamicCache(ddp_cache_data=layers)
        self.mask = torch.cat([_pad_mask(self.mask, width), _pad_mask(other.mask, width)])
        self.pending = torch.cat([self.pending, other.pending])
        self.requests = self.requests + other.requests


def _pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(states, (0, 0, width - states.size(-2), 0))


def _pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(mask, (width - mask.size(1), 0))


def prefill_inputs(prompts: list[list[int]], pad_id: int, device: torch.device | str) -> dict[str, torch.Tensor]:
    """Left-padded prompts with their mask and per-row positions (0 at each row's first token),
    built on the host and moved to the model's ``device`` in one copy each."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long, device="cpu")
    mask = torch.zeros((len(prompts), width), dtype=torch.long, device="cpu")
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long, device="cpu")
        mask[row, width - len(prompt) :] = 1
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": positions.to(device)}
