"""The tokenized-data cache: built once, reused while nothing that shapes the tokens has changed.

The fingerprint covers every input of tokenization: the data files (size, mtime and, up to 256 MiB,
their content), dataset_info.json, the tokenizer (vocabulary, merges, special tokens, chat template),
the template's full definition, the data keys, the stage and the seed (mixing and the eval split
depend on it). Its parts are stored beside the data, so a ``tokenized_path`` built from other inputs
is refused with the parts that differ instead of being used stale.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lmforge.atomic import atomic_dir
from lmforge.data.loaders import data_files
from lmforge.data.registry import DatasetAttr
from lmforge.data.stats import DataReport
from lmforge.errors import LmforgeError

# Bump when the processing code changes what it produces, so old caches are not reused.
PIPELINE_VERSION = "2"
# Data keys that cannot change a single token: the cache ignores them.
NON_SHAPING_KEYS = ("overwrite_cache", "tokenized_path", "preprocessing_num_workers", "template_checks")
CONTENT_HASH_LIMIT = 256 * 2**20
META = "lmforge_data.json"


def _sha(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def file_identity(path: Path) -> str:
    stat = path.stat()
    parts = [str(path.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
    if stat.st_size <= CONTENT_HASH_LIMIT:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
        parts.append(digest.hexdigest())
    return "|".join(parts)


def tokenizer_identity(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    special = json.dumps(
        [
            type(tokenizer).__name__,
            tokenizer.all_special_tokens,
            tokenizer.eos_token_id,
            tokenizer.bos_token_id,
            tokenizer.pad_token_id,
            getattr(tokenizer, "chat_template", None),
        ],
        default=str,
    )
    return _sha(vocab + special)


def fingerprint_parts(cfg: Any, tokenizer: Any, template: Any, attrs: list[DatasetAttr]) -> dict[str, str]:
    """The named inputs of tokenization, each hashed; the cache key is their joint hash."""
    data_keys = cfg.data.model_dump(exclude=set(NON_SHAPING_KEYS))
    files = []
    for attr in attrs:
        files.append(f"{attr!r}")
        files += [file_identity(p) for p in data_files(attr.path)]
    info = Path(cfg.data.dataset_dir) / "dataset_info.json"
    if info.is_file():
        files.append(file_identity(info))
    return {
        "pipeline": PIPELINE_VERSION,
        "stage": cfg.method.stage,
        "seed": str(cfg.train.seed),
        "data keys": _sha(json.dumps(data_keys, sort_keys=True, default=str)),
        "data files": _sha("\n".join(files)),
        "tokenizer": tokenizer_identity(tokenizer),
        "template": _sha(f"{type(template).__module__}.{type(template).__qualname__}:{template!r}"),
    }


def fingerprint(parts: dict[str, str]) -> str:
    return _sha(json.dumps(parts, sort_keys=True))[:20]


def cache_root() -> Path:
    from lmforge.models.builtin import lmforge_home

    return lmforge_home() / "datasets"


def cache_dir_for(cfg: Any, key: str) -> Path:
    return Path(cfg.data.tokenized_path) if cfg.data.tokenized_path else cache_root() / key


def load(directory: Path, parts: dict[str, str], *, strict: bool) -> tuple[Any, Any, DataReport] | None:
    """The cached (train, eval, report), or None when absent or built from other inputs.

    ``strict`` (a user-given tokenized_path) turns a mismatch into an error naming what changed.
    """
    meta_path = directory / META
    if not meta_path.is_file():
        if strict and directory.exists() and any(directory.iterdir()):
            raise LmforgeError(
                f"tokenized_path {directory} exists but holds no lmforge data",
                "point tokenized_path at an empty or new folder",
            )
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("parts") != parts:
        if not strict:
            return None
        changed = sorted(k for k in parts if meta.get("parts", {}).get(k) != parts[k])
        raise LmforgeError(
            f"tokenized_path {directory} was built from different inputs (changed: {', '.join(changed)})",
            "set overwrite_cache: true to rebuild it, or use another tokenized_path",
        )
    from datasets import load_from_disk

    train = load_from_disk(str(directory / "train"))
    evaluation = load_from_disk(str(directory / "eval")) if (directory / "eval").exists() else None
    report = DataReport.from_dict(meta["report"])
    return train, evaluation, report


def save(directory: Path, parts: dict[str, str], train: Any, evaluation: Any, report: DataReport) -> None:
    """Write into a staging folder beside ``directory`` and rename (lmforge.atomic), so a crash leaves
    no half cache and the folder gets the user's umask."""
    if directory.exists() and not (directory / META).exists() and any(directory.iterdir()):
        raise LmforgeError(
            f"refusing to overwrite {directory}: it holds files that are not an lmforge data cache",
            "point tokenized_path at an empty or new folder",
        )
    with atomic_dir(directory) as staging:
        train.save_to_disk(str(staging / "train"))
        if evaluation is not None:
            evaluation.save_to_disk(str(staging / "eval"))
        meta = {"parts": parts, "report": report.to_dict()}
        (staging / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
