"""Merge adapters into the base weights and write a model directory (or a GGUF file) atomically.

The steps read top to bottom: where the export starts (the run's base model), every check that can
fail (export_dir, GGUF support), the tokenizer with the training chat template, the merged
weights, then one staged folder: weights (safetensors shards or GGUF + Modelfile) and the model card.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lmforge.atomic import atomic_dir
from lmforge.config import RunConfig
from lmforge.errors import LmforgeError

# Files an export writes beside the run artifacts (the model card only when it carries the marker).
EXPORT_FILES = re.compile(r"Modelfile|model-(f32|f16|bf16|q8_0|q4_k_m)\.gguf")


def export_model(cfg: RunConfig) -> Path:
    from lmforge.export.gguf import check_gguf_model, check_gguf_tokenizer
    from lmforge.export.load import load_for_export
    from lmforge.export.source import resolve_source
    from lmforge.models.resolve import resolve_model
    from lmforge.models.tokenizer import load_tokenizer

    if not cfg.export.export_dir:
        raise LmforgeError("export needs export_dir", "add export_dir: path/to/merged-model")
    source = resolve_source(cfg)
    cfg = source.cfg
    target = Path(cfg.export.export_dir)
    if target.exists() and not target.is_dir():
        raise LmforgeError(f"export_dir {target} is a file, not a folder", "choose a folder path for export_dir")
    if target.exists() and any(target.iterdir()) and not cfg.train.overwrite_output_dir:
        raise LmforgeError(
            f"export_dir {target} is not empty; nothing was changed",
            "choose another export_dir, or set overwrite_output_dir: true",
        )
    _refuse_foreign_files(target)
    gguf = cfg.export.export_format == "gguf"
    if gguf:
        check_gguf_model(resolve_model(cfg.model.model_name_or_path).path, cfg.export.export_gguf_type)
    # A trained adapter's folder holds the tokenizer with the training chat template and the
    # generation config that stops at the end of turn: the export carries those.
    trained = _last_adapter_dir(cfg)
    tokenizer = load_tokenizer(cfg.model, folder=str(trained) if trained else None)
    template = _template(cfg, tokenizer, trained is not None)
    if gguf:
        check_gguf_tokenizer(tokenizer)
    model = load_for_export(cfg, tokenizer)
    if trained and (trained / "generation_config.json").is_file():
        from transformers import GenerationConfig

        model.generation_config = GenerationConfig.from_pretrained(trained)
    with atomic_dir(target) as staging:
        if gguf:
            _write_gguf(cfg, model, tokenizer, template, staging, target.name)
        else:
            model.save_pretrained(staging, max_shard_size=cfg.export.shard_bytes)
            tokenizer.save_pretrained(staging)
        from lmforge.export.card import render_card

        files = sorted(p.name for p in staging.iterdir())
        card = render_card(cfg, source.run_dir, source.run_config, files)
        (staging / "README.md").write_text(card, encoding="utf-8")
    return target


def _template(cfg: RunConfig, tokenizer: Any, trained: bool) -> Any:
    """The training template. A trained adapter's tokenizer already carries it as its chat
    template; otherwise a named ``template`` becomes the tokenizer's chat template here.
    None for ``template: auto`` on a tokenizer without a chat template (a base model)."""
    from lmforge.data.templates import get_template

    if cfg.data.template == "auto" and not tokenizer.chat_template:
        return None
    template = get_template(cfg.data.template, tokenizer, default_system=cfg.data.default_system)
    if not trained:
        tokenizer.chat_template = template.chat_template_jinja(tokenizer)
    return template


def _write_gguf(cfg: RunConfig, model: Any, tokenizer: Any, template: Any, staging: Path, name: str) -> None:
    from lmforge.export.gguf import gguf_file_name, write_gguf
    from lmforge.export.modelfile import render_modelfile

    gguf_type = cfg.export.export_gguf_type
    eot = template.eot_token_ids(tokenizer) if template is not None else []
    filename = gguf_file_name(gguf_type)
    write_gguf(model, tokenizer, staging / filename, gguf_type, name, eot[0] if len(eot) == 1 else None)
    if template is not None:
        (staging / "Modelfile").write_text(render_modelfile(template, tokenizer, filename), encoding="utf-8")


def _last_adapter_dir(cfg: RunConfig) -> Path | None:
    """The last adapter's folder when lmforge saved a tokenizer there, else None."""
    adapters = cfg.model.adapter_name_or_path or []
    last = Path(adapters[-1]) if adapters else None
    return last if last is not None and (last / "tokenizer_config.json").is_file() else None


def is_export_artifact(path: Path) -> bool:
    from lmforge.export.card import is_export_card
    from lmforge.train.outputs import is_run_artifact

    if path.name == "README.md":
        return is_export_card(path)
    return is_run_artifact(path.name) or EXPORT_FILES.fullmatch(path.name) is not None


def _refuse_foreign_files(target: Path) -> None:
    """overwrite_output_dir replaces an earlier export, never files the user keeps in export_dir."""
    if not target.is_dir():
        return
    foreign = sorted(p.name for p in target.iterdir() if not is_export_artifact(p))
    if foreign:
        raise LmforgeError(
            f"export_dir {target} holds files an export does not write ({', '.join(foreign[:3])}); nothing was changed",
            "overwrite_output_dir replaces only an earlier export: move those files, or choose another export_dir",
        )
