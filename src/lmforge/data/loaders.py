"""Reading data files into raw rows (dicts), with errors that give the file and line.

Rows are produced lazily where the format allows it (jsonl, txt, csv, parquet), so the same reader
serves streaming for files larger than memory. A ``.json`` file holds one JSON document and is parsed
whole: use jsonl for data that does not fit in memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmforge.errors import LmforgeError

SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt", ".arrow")


def saved_splits(path: Path) -> list[str] | None:
    """The splits of a folder written by ``DatasetDict.save_to_disk``; None for anything else."""
    index = path / "dataset_dict.json"
    if not (path.is_dir() and index.is_file()):
        return None
    try:
        splits = json.loads(index.read_text(encoding="utf-8"))["splits"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise LmforgeError(f'{index}: not a datasets split index (expected {{"splits": [...]}})') from None
    return [str(name) for name in splits]


def data_files(path: Path, split: str | None = None) -> list[Path]:
    """The files behind a data set path: the file itself, or a folder's data files in name order.

    A folder saved by ``datasets`` (``save_to_disk``) gives the Arrow files of ``split`` (of every split
    when None), never its JSON metadata.
    """
    splits = saved_splits(path)
    if splits is not None:
        if split is not None and split not in splits:
            raise LmforgeError(
                f"{path} has no split {split!r} (its splits: {', '.join(splits)})",
                "set split in dataset_info.json to one of them",
            )
        return [f for name in ([split] if split else splits) for f in sorted((path / name).glob("*.arrow"))]
    if path.is_dir() and (path / "state.json").is_file():  # one saved Dataset
        return sorted(path.glob("*.arrow"))
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
        if not files:
            raise LmforgeError(f"{path}: folder has no data files", f"use files ending in {', '.join(SUFFIXES)}")
        return files
    if path.suffix not in SUFFIXES:
        raise LmforgeError(f"{path}: unsupported file type {path.suffix!r}", f"use one of {', '.join(SUFFIXES)}")
    return [path]


def iter_rows(path: Path, split: str = "train") -> Iterator[dict[str, Any]]:
    """Rows of one data set path (``split`` of a saved DatasetDict folder), file after file."""
    for file in data_files(path, split if saved_splits(path) is not None else None):
        yield from _READERS[file.suffix](file)


def _read_json(path: Path) -> Iterator[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        # A JSON-lines file saved as .json is a common slip: read it as lines.
        if err.msg == "Extra data":
            yield from _read_jsonl(path)
            return
        raise LmforgeError(f"{path}:{err.lineno}:{err.colno}: malformed JSON: {err.msg}") from None
    if isinstance(data, dict):  # {"data": [...]} or a single record
        lists = [value for value in data.values() if isinstance(value, list)]
        data = lists[0] if len(data) == 1 and lists else [data]
    if not isinstance(data, list):
        raise LmforgeError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for i, row in enumerate(data):
        yield _as_row(row, f"{path}: record {i}")


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise LmforgeError(f"{path}:{lineno}:{err.colno}: malformed JSON line: {err.msg}") from None
            yield _as_row(row, f"{path}:{lineno}")


def _read_csv(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _read_txt(path: Path) -> Iterator[dict[str, Any]]:
    """One text per non-empty line, as LLaMA-Factory reads .txt files for stage pt."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield {"text": line.rstrip("\n")}


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=1000):
        yield from batch.to_pylist()


def _read_arrow(path: Path) -> Iterator[dict[str, Any]]:
    from datasets import Dataset

    yield from Dataset.from_file(str(path))


def _as_row(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise LmforgeError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


_READERS = {
    ".json": _read_json,
    ".jsonl": _read_jsonl,
    ".csv": _read_csv,
    ".txt": _read_txt,
    ".parquet": _read_parquet,
    ".arrow": _read_arrow,
}
