"""The trained-positions loss equals the model's own loss, and so do its gradients."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from lmforge.train.loss import supports_trained_positions_loss, trained_positions_loss


def _batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    input_ids = torch.randint(0, 49152, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 8:] = 0  # right padding
    attention_mask[2, 5:] = 0
    labels = input_ids.clone()
    labels[:, :4] = -100  # prompt
    labels[attention_mask == 0] = -100
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def test_loss_and_gradients_match_the_models_own(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    assert supports_trained_positions_loss(model)
    batch = _batch()
    items = (batch["labels"][:, 1:] != -100).sum()

    reference = model(**batch, num_items_in_batch=items).loss
    reference.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    loss = trained_positions_loss(model, batch, items)
    loss.backward()
    torch.testing.assert_close(loss, reference, atol=1e-6, rtol=1e-6)
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, expected[name], atol=1e-6, rtol=1e-5)
