"""Which files a ``dataset:`` entry means: names looked up in ``dataset_info.json`` or direct file paths.

The schema is LLaMA-Factory's (``file_name``, ``formatting``, ``columns``, ``tags``, ``ranking``,
``split``, ``num_samples``), so existing dataset_info.json files work unchanged. Only local files are
read: hub entries fail with a message that says so, instead of a network error later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmforge.data.loaders import SUFFIXES, saved_splits
from lmforge.errors import LmforgeError

FORMATTINGS = ("alpaca", "sharegpt", "openai", "text")
HUB_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")

DEFAULT_COLUMNS: dict[str, dict[str, str | None]] = {
    "alpaca": {"prompt": "instruction", "query": "input", "response": "output", "history": None},
    "sharegpt": {"messages": "conversations"},
    "openai": {"messages": "messages", "tools": "tools"},
    "text": {"prompt": "text"},
}
# Columns a file given by path may carry beside its format's own (taken by their own names).
OPTIONAL_COLUMNS = {
    "alpaca": ("system", "history", "tools", "chosen", "rejected"),
    "sharegpt": ("system", "tools", "chosen", "rejected"),
    "openai": ("tools", "chosen", "rejected"),
}
PAIR_COLUMNS = ("chosen", "rejected")
COLUMN_KEYS = (
    "prompt",
    "query",
    "response",
    "history",
    "messages",
    "system",
    "tools",
    "chosen",
    "rejected",
    "kto_tag",
)
DEFAULT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
OPENAI_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "tool",
    "function_tag": "function_call",
    "system_tag": "system",
}


@dataclass
class DatasetAttr:
    """One data set to read: where it is and how its columns map onto the canonical record."""

    name: str
    path: Path
    formatting: str = "auto"  # auto: decided from the first row's keys (direct file paths)
    columns: dict[str, str | None] = field(default_factory=dict)
    explicit_columns: tuple[str, ...] = ()  # columns named in dataset_info.json: they must exist
    tags: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TAGS))
    ranking: bool = False
    split: str = "train"
    num_samples: int | None = None

    def column(self, key: str) -> str | None:
        return self.columns.get(key)

    def with_formatting(self, formatting: str, present: set[str] | frozenset[str] = frozenset()) -> DatasetAttr:
        """Fill default columns and tags once the formatting is known (auto-detected files).

        ``present`` holds the file's column names: a file given by path has no dataset_info.json entry
        to map its optional columns, so ``system``, ``history``, ``tools`` and a ``chosen``/``rejected``
        pair are taken by their own names when the file has them (as docs/data.md promises).
        """
        ranking = self.ranking or {"chosen", "rejected"} <= set(present)
        optional = [key for key in OPTIONAL_COLUMNS.get(formatting, ()) if ranking or key not in PAIR_COLUMNS]
        found = {key: key for key in optional if key in present}
        columns = {**DEFAULT_COLUMNS.get(formatting, {}), **found, **self.columns}
        tags = dict(OPENAI_TAGS) if formatting == "openai" and self.formatting == "auto" else self.tags
        return DatasetAttr(
            self.name,
            self.path,
            formatting,
            columns,
            self.explicit_columns,
            tags,
            ranking,
            self.split,
            self.num_samples,
        )


def read_dataset_info(dataset_dir: str | Path) -> dict[str, Any]:
    """dataset_info.json as a dict ({} when the folder has none), with JSON errors located."""
    path = Path(dataset_dir) / "dataset_info.json"
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise LmforgeError(f"{path}:{err.lineno}:{err.colno}: malformed JSON: {err.msg}") from None
    if not isinstance(info, dict):
        raise LmforgeError(f"{path}: expected a mapping of data set names, got {type(info).__name__}")
    return info


def resolve_datasets(names: list[str], dataset_dir: str | Path) -> list[DatasetAttr]:
    """Names in dataset_info.json first, then existing file paths (relative to cwd or dataset_dir)."""
    info = read_dataset_info(dataset_dir)
    return [_resolve_one(name, info, Path(dataset_dir)) for name in names]


def _resolve_one(name: str, info: dict[str, Any], dataset_dir: Path) -> DatasetAttr:
    if name in info:
        return _from_entry(name, info[name], dataset_dir)
    for candidate in (Path(name), dataset_dir / name):
        if candidate.exists():
            return DatasetAttr(name=name, path=candidate)
    known = ", ".join(sorted(info)) or "none"
    where = dataset_dir / "dataset_info.json"
    if Path(name).suffix in SUFFIXES:
        raise LmforgeError(f"dataset file not found: {name}", f"check the path (also looked in {dataset_dir})")
    if not where.is_file():
        raise LmforgeError(
            _no_dataset_info(name, dataset_dir),
            "set dataset_dir to the folder that holds "
            "dataset_info.json (an absolute path works from any directory), or give a file path",
        )
    raise LmforgeError(
        f"dataset {name!r} is not in {where} (known: {known})",
        "add an entry for it there, or give a file path",
    )


def _no_dataset_info(name: str, dataset_dir: Path) -> str:
    """Name the missing file and the folder looked in (a relative dataset_dir is read from the cwd)."""
    info = dataset_dir.resolve() / "dataset_info.json"
    where = "no such file" if dataset_dir.is_dir() else f"the folder {dataset_dir.resolve()} does not exist"
    if not dataset_dir.is_absolute():
        where += f"; dataset_dir {str(dataset_dir)!r} is relative to the working directory {Path.cwd()}"
    return f"dataset {name!r} is not in {info}: {where} (nor is it a file path)"


def _from_entry(name: str, entry: dict[str, Any], dataset_dir: Path) -> DatasetAttr:
    where = f"dataset_info.json entry {name!r}"
    if not isinstance(entry, dict):
        raise LmforgeError(f"{where} must be a mapping, got {type(entry).__name__}")
    load_from = entry.get("load_from", "file")
    hub_key = next((key for key in HUB_KEYS if key in entry), None)
    if hub_key or load_from != "file":
        source = hub_key or f"load_from: {load_from}"
        raise LmforgeError(
            f"{where} loads from a remote source ({source}); lmforge reads local files only",
            "download the data and point file_name at it",
        )
    if "file_name" not in entry:
        raise LmforgeError(f"{where} has no file_name", "add file_name: the data file, relative to dataset_dir")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        raise LmforgeError(f"{where}: unknown formatting {formatting!r}", f"use one of {', '.join(FORMATTINGS)}")
    columns = entry.get("columns") or {}
    unknown = sorted(set(columns) - set(COLUMN_KEYS))
    if unknown:
        raise LmforgeError(f"{where}: unknown column keys {unknown}", f"use {', '.join(COLUMN_KEYS)}")
    tags = entry.get("tags") or {}
    bad_tags = sorted(set(tags) - set(DEFAULT_TAGS))
    if bad_tags:
        raise LmforgeError(f"{where}: unknown tag keys {bad_tags}", f"use {', '.join(DEFAULT_TAGS)}")
    base_tags = OPENAI_TAGS if formatting == "openai" else DEFAULT_TAGS
    path = Path(entry["file_name"])
    if not path.is_absolute():
        path = dataset_dir / path
    if not path.exists():
        raise LmforgeError(f"{where}: file not found: {path}", "check file_name and dataset_dir")
    split = str(entry.get("split", "train"))
    if split != "train" and saved_splits(path) is None:
        raise LmforgeError(
            f"{where}: split {split!r} cannot be taken from {path}: a local file or folder of files is one "
            "split, read as 'train'",
            "remove split, point file_name at that split's file, or at a folder saved with "
            "DatasetDict.save_to_disk (its splits can be chosen)",
        )
    return DatasetAttr(
        name=name,
        path=path,
        formatting=formatting,
        columns={**DEFAULT_COLUMNS[formatting], **columns},
        explicit_columns=tuple(key for key, value in columns.items() if value),
        tags={**base_tags, **tags},
        ranking=bool(entry.get("ranking", False)),
        split=split,
        num_samples=entry.get("num_samples"),
    )
