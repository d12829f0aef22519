"""Turning ``model_name_or_path`` into something transformers can load, with clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lmforge.errors import LmforgeError
from lmforge.models.builtin import builtin_model_dir, convert_gguf_to_dir, is_builtin, lmforge_home


@dataclass(frozen=True)
class ResolvedModel:
    path: str  # a local directory (or a hub id when not local)
    builtin: bool = False


def resolve_model(name_or_path: str) -> ResolvedModel:
    if is_builtin(name_or_path):
        return ResolvedModel(str(builtin_model_dir(name_or_path)), builtin=True)
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise LmforgeError(f"model file not found: {path}", "check model_name_or_path")
        target = lmforge_home() / "models" / f"gguf-{path.stem}-{path.stat().st_size}"
        if not (target / "config.json").is_file():
            convert_gguf_to_dir(path.resolve(), target)
        return ResolvedModel(str(target))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LmforgeError(
                f"{path} is not a model directory (no config.json)",
                "point model_name_or_path at a folder saved by save_pretrained, a .gguf file, or smollm2-135m-instruct",
            )
        return ResolvedModel(str(path))
    looks_local = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1
    if looks_local:
        raise LmforgeError(
            f"model path does not exist: {name_or_path}",
            "check model_name_or_path (a directory, a .gguf file, or smollm2-135m-instruct)",
        )
    return ResolvedModel(name_or_path)  # a hub id such as org/name; loading reports hub errors
