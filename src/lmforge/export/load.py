"""The merged model an export writes: base weights in the export dtype, on the export device,
adapters merged in.

Not ``models.loader.load_model``: inference places models on the best device and in
``infer_dtype``, while an export follows ``export_device`` (cpu by default, as LLaMA-Factory: a
merge needs no GPU memory and a GPU's bf16 would round fp32 weights) and keeps the dtype the base
is stored in unless ``export_dtype`` says otherwise. A QLoRA adapter (``quantization_bit`` set in
the run) merges into the unquantized base: merging into 4/8-bit weights would round the merged
weights again, so the base is loaded in full precision and ``quantization_bit`` is not applied.
"""

from __future__ import annotations

import logging
from typing import Any

from lmforge.config import RunConfig
from lmforge.errors import LmforgeError
from lmforge.models.resolve import resolve_model

logger = logging.getLogger(__name__)


def load_for_export(cfg: RunConfig, tokenizer: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from lmforge.models.device import best_device

    model_cfg, export = cfg.model, cfg.export
    if model_cfg.quantization_bit is not None:
        logger.info("quantization_bit: %s: merging into the full-precision base", model_cfg.quantization_bit)
    dtype = "auto" if export.export_dtype == "auto" else getattr(torch, export.export_dtype)
    path = resolve_model(model_cfg.model_name_or_path).path
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, trust_remote_code=model_cfg.trust_remote_code,
            revision=model_cfg.model_revision, cache_dir=model_cfg.cache_dir,
        )  # fmt: skip
    except (OSError, ValueError) as err:
        raise LmforgeError(f"cannot load model from {path}: {str(err).splitlines()[0]}") from None
    model.to(torch.device("cpu") if export.export_device == "cpu" else best_device())
    if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model = _merge(model, model_cfg.adapter_name_or_path or [])
    if export.export_dtype != "auto":
        model = model.to(dtype)  # merged LoRA deltas may have come in as float32
    return model.eval()


def _merge(model: Any, adapters: list[str]) -> Any:
    from peft import PeftModel

    for path in adapters:
        try:
            model = PeftModel.from_pretrained(model, path).merge_and_unload()
        except (OSError, ValueError) as err:
            raise LmforgeError(f"cannot load adapter {path}: {str(err).splitlines()[0]}") from None
    return model
