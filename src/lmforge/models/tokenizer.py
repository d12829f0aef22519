"""Loading a tokenizer without loading any weights (data, doctor and templates need only this)."""

from __future__ import annotations

from typing import Any

from lmforge.config.model import ModelConfig
from lmforge.errors import LmforgeError
from lmforge.models.resolve import resolve_model


def load_tokenizer(model_cfg: ModelConfig, folder: str | None = None) -> Any:
    """The model's tokenizer, or the one saved in ``folder`` (an adapter's, carrying the training
    chat template)."""
    from transformers import AutoTokenizer

    path = folder or resolve_model(model_cfg.model_name_or_path).path
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path,
            trust_remote_code=model_cfg.trust_remote_code,
            revision=model_cfg.model_revision,
            cache_dir=model_cfg.cache_dir,
        )
    except OSError as err:
        raise LmforgeError(f"cannot load a tokenizer from {path}: {err}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer
