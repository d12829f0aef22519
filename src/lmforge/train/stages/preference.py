"""What the preference stages (rm, dpo, kto) share: sequence log-probabilities, the reference
model, per-step metrics, and the config checks.

The reference (dpo, kto) is one of, in this order:
- precomputed log-probabilities (``precompute_ref_log_probs``): scored once from the freshly loaded
  weights before training (and before a resume loads a checkpoint), so no second copy stays;
- ``ref_model`` (+ ``ref_model_adapters``, ``ref_model_quantization_bit``): its own ModelConfig,
  loaded frozen through ``models.loader.load_model``;
- LoRA: the base with the adapter disabled — one copy of the weights (as trl does);
- full or freeze fine-tuning: a frozen copy of the starting weights (twice the weight memory).
Reference-free losses (orpo, simpo) use none.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import torch

from lmforge.config.method import REFERENCE_FREE_LOSSES
from lmforge.data.processors import IGNORE_INDEX
from lmforge.errors import LmforgeError


def sequence_logps(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the summed log-probability of its trained tokens, and how many there are.

    Position t predicts token t+1; only positions whose label is not -100 count.
    """
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logps.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1), mask.sum(-1)


def needs_reference(cfg: Any) -> bool:
    stage, method = cfg.method.stage, cfg.method
    return stage == "kto" or (stage == "dpo" and method.pref_loss not in REFERENCE_FREE_LOSSES)


def reference_model_config(cfg: Any) -> Any:
    """The reference's own ModelConfig: ``ref_model`` with its adapters and quantization, or the base."""
    method = cfg.method
    if method.ref_model is None:
        return cfg.model.model_copy(update={"adapter_name_or_path": None})  # the starting weights
    return cfg.model.model_copy(
        update={
            "model_name_or_path": method.ref_model,
            "adapter_name_or_path": method.ref_model_adapters,
            "quantization_bit": method.ref_model_quantization_bit,
        }
    )


def load_reference(cfg: Any, tokenizer: Any) -> dict[str, Any]:
    """``{"reference": model}`` when the run keeps a separate frozen reference, else ``{}``."""
    from lmforge.models.loader import load_model

    method = cfg.method
    if not needs_reference(cfg) or (method.precompute_ref_log_probs and method.ref_model is None):
        return {}
    if method.ref_model is None and method.finetuning_type == "lora":
        return {}  # the base with the adapter disabled
    return {"reference": load_model(reference_model_config(cfg), tokenizer, train=cfg.train)}


def check_preference(cfg: Any) -> None:
    """Keys that the preference stages cannot honour, refused before anything loads."""
    data, method = cfg.data, cfg.method
    stage = method.stage
    if data.packing or data.neat_packing:
        key = "neat_packing" if data.neat_packing else "packing"
        raise LmforgeError(
            f"{key} cannot be used with stage {stage}: each pair (or answer) is scored as one sequence",
            f"remove {key}",
        )
    if data.train_on_prompt:
        raise LmforgeError(
            f"train_on_prompt cannot be used with stage {stage}: preference stages score the answers only",
            "remove train_on_prompt",
        )
    if data.streaming:
        raise LmforgeError(f"streaming is not supported with stage {stage}", "set streaming: false")
    if stage == "rm":
        return
    for key, losses in (("dpo_label_smoothing", ("sigmoid",)), ("simpo_gamma", ("simpo",))):
        default = type(method).model_fields[key].default
        if stage == "dpo" and method.pref_loss not in losses and getattr(method, key) != default:
            raise LmforgeError(
                f"{key} applies to pref_loss {' or '.join(losses)}, and this run uses pref_loss: {method.pref_loss}",
                f"remove {key}, or set pref_loss: {losses[0]}",
            )
    ref_keys = ("ref_model", "ref_model_adapters", "ref_model_quantization_bit", "precompute_ref_log_probs")
    if not needs_reference(cfg):
        for key in ref_keys:
            if cfg.explicitly_set(key) and getattr(method, key) not in (None, False):
                raise LmforgeError(
                    f"{key} is set, but pref_loss: {method.pref_loss} uses no reference model",
                    f"remove {key}, or use pref_loss: sigmoid (hinge, ipo)",
                )
    if method.ref_model is None and (method.ref_model_adapters or method.ref_model_quantization_bit):
        raise LmforgeError("ref_model_adapters and ref_model_quantization_bit need ref_model", "set ref_model")


@contextlib.contextmanager
def adapter_disabled(model: Any) -> Iterator[None]:
    """The base model's forward: a peft model with its adapter switched off (one copy of the weights)."""
    with model.disable_adapter():
        yield


class StageMetrics:
    """Per-micro-batch values averaged over each logging window, for train and eval separately."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

    def record(self, training: bool, **values: torch.Tensor | float) -> None:
        store = self._values["train" if training else "eval"]
        for key, value in values.items():
            store[key].append(float(value.detach().float().mean()) if isinstance(value, torch.Tensor) else value)

    def merge_into(self, logs: dict[str, float]) -> None:
        mode = "train" if "loss" in logs else "eval" if any(k.startswith("eval_") for k in logs) else None
        if mode is None:
            return
        prefix = "" if mode == "train" else "eval_"
        for key, values in self._values[mode].items():
            if values:
                logs[f"{prefix}{key}"] = round(sum(values) / len(values), 6)
        self._values[mode].clear()


class StageMetricsMixin:
    """For a stage trainer: its ``StageMetrics`` merged into every train and eval log, and an
    evaluation that keeps the loss only (these stages' outputs are scores or log-probabilities of
    pairs, not the logits Trainer's prediction loop gathers). Mix in before the Trainer class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stage_metrics = StageMetrics()

    def prediction_step(
        self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool, ignore_keys: Any = None
    ) -> Any:
        return super().prediction_step(model, inputs, True, ignore_keys)  # type: ignore[misc]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        self.stage_metrics.merge_into(logs)
        super().log(logs, start_time)  # type: ignore[misc]
