"""The one scoring call: log-probabilities of chosen next tokens after each of many prompts.

Benchmark evaluation uses it for the answer letters; the reward-model route of the preference
stages can score through it too. Prompts are batched left-padded (as the inference engine's
prefill does: every row's last token in the last column, positions counting real tokens only),
so the LM head runs on one position per row (``logits_to_keep=1``) instead of all of them.
Prompts are grouped by length to waste little on padding; results come back in input order.
"""

from __future__ import annotations

from typing import Any

import torch


@torch.inference_mode()
def next_token_logprobs(
    model: Any, prompts: list[list[int]], token_ids: list[int], *, pad_token_id: int, batch_size: int = 8
) -> torch.Tensor:
    """``[len(prompts), len(token_ids)]`` float32 log-probabilities (over the whole vocabulary)
    of each of ``token_ids`` as the token that follows each prompt."""
    out = torch.empty(len(prompts), len(token_ids), dtype=torch.float32)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    wanted = torch.tensor(token_ids, dtype=torch.long)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        inputs = _left_padded([prompts[i] for i in rows], pad_token_id, device)
        logits = model(**inputs, use_cache=False, logits_to_keep=1).logits[:, -1].float()
        out[rows] = torch.log_softmax(logits, dim=-1)[:, wanted.to(device)].cpu()
    return out


def _left_padded(prompts: list[list[int]], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": positions.to(device)}
