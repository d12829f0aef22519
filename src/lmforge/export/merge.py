"""Merge adapters into the base weights and write a model directory atomically."""

from __future__ import annotations

from pathlib import Path

import torch

from lmforge.atomic import atomic_dir
from lmforge.config import RunConfig
from lmforge.errors import LmforgeError


def export_model(cfg: RunConfig) -> Path:
    from lmforge.models.loader import load_model
    from lmforge.models.tokenizer import load_tokenizer

    if not cfg.export.export_dir:
        raise LmforgeError("export needs export_dir", "add export_dir: path/to/merged-model")
    if cfg.model.quantization_bit is not None:
        raise LmforgeError(
            f"export merges into the full-precision base, not a quantization_bit: {cfg.model.quantization_bit} one",
            "remove quantization_bit: a QLoRA adapter merges into the unquantized model",
        )
    target = Path(cfg.export.export_dir)
    if target.exists() and not target.is_dir():
        raise LmforgeError(f"export_dir {target} is a file, not a folder", "choose a folder path for export_dir")
    if target.exists() and any(target.iterdir()) and not cfg.train.overwrite_output_dir:
        raise LmforgeError(
            f"export_dir {target} is not empty; nothing was changed",
            "choose another export_dir, or set overwrite_output_dir: true",
        )
    _refuse_foreign_files(target)
    # A trained adapter's folder holds the tokenizer with the training chat template and the
    # generation config that stops at the end of turn: the export carries those.
    trained = _last_adapter_dir(cfg)
    tokenizer = load_tokenizer(cfg.model, folder=str(trained) if trained else None)
    model = load_model(cfg.model, tokenizer)
    if cfg.export.export_dtype != "auto":
        model = model.to(getattr(torch, cfg.export.export_dtype))
    if trained and (trained / "generation_config.json").is_file():
        from transformers import GenerationConfig

        model.generation_config = GenerationConfig.from_pretrained(trained)
    with atomic_dir(target) as staging:
        model.save_pretrained(staging, max_shard_size=f"{cfg.export.export_size}GB")
        tokenizer.save_pretrained(staging)
    return target


def _last_adapter_dir(cfg: RunConfig) -> Path | None:
    """The last adapter's folder when lmforge saved a tokenizer there, else None."""
    adapters = cfg.model.adapter_name_or_path or []
    last = Path(adapters[-1]) if adapters else None
    return last if last is not None and (last / "tokenizer_config.json").is_file() else None


def _refuse_foreign_files(target: Path) -> None:
    """overwrite_output_dir replaces an earlier export, never files the user keeps in export_dir."""
    from lmforge.train.outputs import is_run_artifact

    if not target.is_dir():
        return
    foreign = sorted(p.name for p in target.iterdir() if not is_run_artifact(p.name))
    if foreign:
        raise LmforgeError(
            f"export_dir {target} holds files an export does not write ({', '.join(foreign[:3])}); nothing was changed",
            "overwrite_output_dir replaces only an earlier export: move those files, or choose another export_dir",
        )
