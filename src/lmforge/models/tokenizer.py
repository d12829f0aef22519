"""The tokenizer and its chat template, without loading any weights.

``build_tokenizer_and_template(cfg)`` is the one way every entry point (train, data, doctor, chat,
api, webchat) gets them, so the same conversation becomes the same token ids everywhere and the
tokenized-data cache ``lmforge data`` fills is the one training reuses (its fingerprint covers the
chat template).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from lmforge.config.model import ModelConfig
from lmforge.errors import LmforgeError
from lmforge.models.resolve import resolve_model


class TokenizerWithTemplate(NamedTuple):
    tokenizer: Any  # its chat_template is the training template's
    template: Any  # lmforge.data.templates.Template; None for raw-text pre-training
    own_chat_template: str | None  # the model's chat template as loaded (the doctor compares the two)


def build_tokenizer_and_template(cfg: Any, tokenizer: Any = None) -> TokenizerWithTemplate:
    """The model's tokenizer carrying the config's template as its chat template.

    Swapping the chat template means every checkpoint and the final output render prompts exactly
    as training did, also for tools outside lmforge (``apply_chat_template``, vLLM, llama.cpp).
    ``tokenizer``: one already loaded with ``load_tokenizer(cfg.model)`` (the doctor reports loading
    and template as two steps); by default it is loaded here.
    """
    from lmforge.data.templates import get_template

    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.model)
    if trains_on_raw_text(cfg):
        # Pre-training tokenizes raw text: no template, and the tokenizer is kept as it came (a base
        # model has no chat template, and pre-training gives it none).
        return TokenizerWithTemplate(tokenizer, None, tokenizer.chat_template)
    template = get_template(cfg.data.template, tokenizer, default_system=cfg.data.default_system)
    own_chat_template = tokenizer.chat_template
    tokenizer.chat_template = template.chat_template_jinja(tokenizer)
    return TokenizerWithTemplate(tokenizer, template, own_chat_template)


def trains_on_raw_text(cfg: Any) -> bool:
    """stage pt with template: auto renders no conversation, so it needs no chat template. A named
    template still applies (``template: chatml`` with stage pt saves that chat template)."""
    return cfg.method.stage == "pt" and cfg.data.template == "auto"


def load_tokenizer(model_cfg: ModelConfig, folder: str | None = None) -> Any:
    """The model's tokenizer, or the one saved in ``folder`` (an adapter's, carrying the training
    chat template); pad token set (eos when the model has none), padding on the right."""
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
