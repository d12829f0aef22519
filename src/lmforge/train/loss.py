"""Causal-LM loss computed only where tokens are trained.

The LM head of a small model is a large share of its compute (SmolLM2-135M: a 49k x 576 matrix,
~20% of the forward FLOPs) and its logits dominate activation memory (fp32, seq x vocab). In SFT
most positions are prompt or padding and carry no label, so projecting every position wastes both.

The model's own forward does the work: transformers 5.23 takes ``logits_to_keep`` as a boolean
``(batch, seq)`` mask and projects only the kept hidden states (flattened to ``(kept, hidden)``).
Calling the model itself, never its decoder and head directly, keeps everything that wraps its
forward: accelerate's autocast (``bf16``/``fp16``), peft's hooks, DDP/DeepSpeed/FSDP. The loss is
the same sum over trained tokens divided by ``num_items_in_batch`` that transformers computes
(with ``label_smoothing_factor`` as its LabelSmoother applies it), so accumulation and
multi-process averaging keep their meaning; tests compare it with the standard path.

Used only for architectures whose own forward (not one patched onto the instance, as Liger's is)
slices with ``slice_logits_to_keep`` and whose logits are a plain linear head (no soft-capping or
logit scaling); other models take the standard path.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
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
        # A forward replaced on the instance (Liger's fused-CE forward) may not take a boolean
        # logits_to_keep: only transformers' own forward is known to.
        and getattr(lm.forward, "__func__", None) is type(lm).forward
        and type(lm).forward.__module__.startswith("transformers.")  # not patched onto the class either
    )


def trained_positions_loss(
    model: Any, inputs: dict[str, torch.Tensor], num_items_in_batch: Any, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Sum of next-token cross-entropy over trained positions / ``num_items_in_batch``.

    ``model`` is the model as the Trainer calls it (wrapped or not); position t is kept when the
    label of t + 1 is trained, so the kept logits line up with the shifted labels row by row.
    """
    labels = inputs["labels"]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    targets = labels[:, 1:][keep[:, :-1]]
    model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    logits = model(**model_inputs, logits_to_keep=keep).logits.float()
    loss = F.cross_entropy(logits, targets, reduction="sum", label_smoothing=label_smoothing)
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch
