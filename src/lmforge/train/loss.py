"""Causal-LM loss computed only where tokens are trained.

The LM head of a small model is a large share of its compute (SmolLM2-135M: a 49k x 576 matrix,
~20% of the forward FLOPs) and its logits dominate activation memory (fp32, seq x vocab). In SFT
most positions are prompt or padding and carry no label, so projecting every position wastes both.
Here the decoder runs once, the hidden states of positions whose *next* token is trained are
gathered, and only those go through the head and the cross-entropy. The loss is the same sum over
trained tokens divided by ``num_items_in_batch`` that transformers computes, so accumulation and
multi-process averaging keep their meaning; tests compare it with the model's own loss.

Used only for architectures whose logits are a plain linear head over the last hidden state
(no soft-capping or logit scaling); other models take the standard path.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

PLAIN_HEAD_MODELS = frozenset(
    {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Phi3ForCausalLM"}
)


def causal_lm_of(model: Any) -> Any:
    """The transformers CausalLM inside a (possibly peft-wrapped) model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supports_trained_positions_loss(model: Any) -> bool:
    lm = causal_lm_of(model)
    config = lm.config
    return (
        type(lm).__name__ in PLAIN_HEAD_MODELS
        and getattr(config, "final_logit_softcapping", None) is None
        and getattr(config, "logit_scale", None) in (None, 1, 1.0)
        and hasattr(lm, "model")
        and hasattr(lm, "lm_head")
    )


def trained_positions_loss(model: Any, inputs: dict[str, torch.Tensor], num_items_in_batch: Any) -> torch.Tensor:
    """Sum of next-token cross-entropy over trained positions / ``num_items_in_batch``."""
    lm = causal_lm_of(model)
    labels = inputs["labels"]
    model_inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "position_ids")}
    hidden = lm.model(**model_inputs, use_cache=False).last_hidden_state
    shift_labels = labels[:, 1:]
    trained = shift_labels != -100
    selected = hidden[:, :-1][trained]
    logits = lm.lm_head(selected).float()
    loss = F.cross_entropy(logits, shift_labels[trained], reduction="sum")
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch
