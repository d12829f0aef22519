"""The data pipeline, top to bottom: resolve → read → convert → mix → split → tokenize → pack → cache.

``load_records`` stops at canonical records (what `lmforge data` and the web UI preview);
``build_datasets`` goes on to the tokenized columns the Trainer consumes and caches them by
fingerprint, so a second run with the same inputs skips tokenization (``report.cache_hit``).
Streaming (``streaming: true``) reads files lazily through an IterableDataset, shuffled through a
``buffer_size`` window with the seed, and is not cached.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from datasets import Dataset, DatasetInfo, IterableDataset

from lmforge.data import cache
from lmforge.data.converters import check_columns, check_stage_takes, convert_row, detect_formatting
from lmforge.data.encoders import encoding_for
from lmforge.data.loaders import iter_rows
from lmforge.data.mixing import mix, resample, split_eval, take
from lmforge.data.packing import concat_chunk_batch, pack_batch
from lmforge.data.record import FEATURES
from lmforge.data.registry import DatasetAttr, resolve_datasets
from lmforge.data.stats import DataReport, length_stats, merge_drops
from lmforge.environ import environ_kept
from lmforge.errors import LmforgeError

AnyDataset = Dataset | IterableDataset
PEEK_ROWS = 100  # rows looked at to find a file's columns


@dataclass
class TokenizedData:
    train: AnyDataset
    eval: AnyDataset | None
    report: DataReport


@dataclass
class RecordSet:
    train: AnyDataset
    eval: AnyDataset | None
    records: dict[str, int]
    dropped: Counter[str]


# --- records -------------------------------------------------------------------------------------
def load_records(cfg: Any) -> tuple[AnyDataset, AnyDataset | None]:
    """Canonical records for training and evaluation, after conversion, max_samples, mixing and val_size."""
    records = read_all(cfg)
    return records.train, records.eval


def read_all(cfg: Any) -> RecordSet:
    data, seed = cfg.data, cfg.train.seed
    if not data.dataset:
        raise LmforgeError("no training data: `dataset` is not set", "set dataset: a name or a file path")
    if data.eval_dataset and data.val_size:
        raise LmforgeError("val_size and eval_dataset are both set", "use one way to get evaluation data")
    counts: dict[str, int] = {}
    dropped: Counter[str] = Counter()
    train_sets = [_read(a, cfg, counts, dropped) for a in resolve_datasets(data.dataset, data.dataset_dir)]
    train = mix(train_sets, data.mix_strategy, data.interleave_probs, seed)
    if isinstance(train, IterableDataset):
        # A stream cannot be permuted: shuffle through a buffer_size window, seeded (LLaMA-Factory's rule).
        train = train.shuffle(seed=seed, buffer_size=data.buffer_size)
    evaluation = None
    if data.eval_dataset:
        eval_sets = [_read(a, cfg, counts, dropped) for a in resolve_datasets(data.eval_dataset, data.dataset_dir)]
        evaluation = mix(eval_sets, "concat", None, seed)
    elif data.val_size and isinstance(train, Dataset):
        train, evaluation = split_eval(train, data.val_size, seed)
    return RecordSet(train, evaluation, counts, dropped)


def _read(attr: DatasetAttr, cfg: Any, counts: dict[str, int], dropped: Counter[str]) -> AnyDataset:
    data, stage = cfg.data, cfg.method.stage
    rows = iter_rows(attr.path, attr.split)
    head = list(itertools.islice(rows, PEEK_ROWS))
    columns = set().union(*(row.keys() for row in head)) if head else set()
    if attr.formatting == "auto":
        if not head:
            raise LmforgeError(f"data set {attr.name!r}: {attr.path} has no records")
        attr = attr.with_formatting(detect_formatting(columns, attr), columns)
    check_columns(attr, columns, stage)
    check_stage_takes(attr, stage)
    encoding_for(stage).check_attr(attr, stage)  # e.g. pairwise stages need chosen/rejected
    all_rows = itertools.chain(head, rows)
    if data.streaming:
        stream = IterableDataset.from_generator(
            _stream_records, features=FEATURES, gen_kwargs={"attr": attr, "stage": stage}
        )
        return take(stream, data.max_samples) if data.max_samples else stream
    records, drops = _convert(all_rows, attr, stage, data.max_samples)
    dropped.update(drops)
    if not records:
        detail = ", ".join(f"{n} {reason}" for reason, n in drops.most_common()) or "the file has no records"
        raise LmforgeError(
            f"data set {attr.name!r} ({attr.path}) has no usable records: {sum(drops.values())} dropped ({detail})",
            "check the file's columns and roles against its dataset_info.json entry",
        )
    # Arrow builds the table in C++; Dataset.from_list would encode every nested value in Python.
    dataset = Dataset(pa.Table.from_pylist(records, schema=FEATURES.arrow_schema), info=DatasetInfo(features=FEATURES))
    if attr.num_samples:
        dataset = resample(dataset, attr.num_samples, cfg.train.seed)
    counts[attr.name] = len(dataset)
    return dataset


def _convert(
    rows: Iterator[dict[str, Any]], attr: DatasetAttr, stage: str, limit: int | None
) -> tuple[list[dict[str, Any]], Counter[str]]:
    records: list[dict[str, Any]] = []
    where: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        record, reason = convert_row(row, attr, index, stage)
        if record is None:
            where.setdefault(reason or "unknown", []).append(index)
            continue
        records.append(record)
        if limit and len(records) >= limit:
            break
    return records, Counter({_named(reason, attr, indices): len(indices) for reason, indices in where.items()})


def _named(reason: str, attr: DatasetAttr, indices: list[int], shown: int = 3) -> str:
    """A drop reason with the records it hit, so the user can find them: ``empty response [d.json records 2, 7]``."""
    listed = ", ".join(map(str, indices[:shown])) + (", …" if len(indices) > shown else "")
    return f"{reason} [{attr.name} record{'s' if len(indices) > 1 else ''} {listed}]"


def _stream_records(attr: DatasetAttr, stage: str) -> Iterator[dict[str, Any]]:
    """Records of one file, read lazily (drops are skipped: a stream's drop counts are not reported)."""
    for index, row in enumerate(iter_rows(attr.path, attr.split)):
        record, _ = convert_row(row, attr, index, stage)
        if record is not None:
            yield record


# --- tokens --------------------------------------------------------------------------------------
def build_datasets(cfg: Any, tokenizer: Any, template: Any) -> TokenizedData:
    """Tokenized train/eval sets with ``input_ids`` and ``labels`` (+ ``position_ids`` when packed), cached."""
    data = cfg.data
    if data.streaming:
        records = read_all(cfg)
        report = DataReport(records=records.records, packing=_packing_mode(cfg), cache_path=None, streamed=True)
        train = _tokenize(records.train, cfg, tokenizer, template)
        evaluation = _tokenize(records.eval, cfg, tokenizer, template) if records.eval is not None else None
        return TokenizedData(_pack(train, cfg), _pack(evaluation, cfg) if evaluation else None, report)
    attrs = resolve_datasets(list(data.dataset or []) + list(data.eval_dataset or []), data.dataset_dir)
    parts = cache.fingerprint_parts(cfg, tokenizer, template, attrs)
    key = cache.fingerprint(parts)
    directory = cache.cache_dir_for(cfg, key)
    if not data.overwrite_cache:
        cached = cache.load(directory, parts, strict=data.tokenized_path is not None)
        if cached is not None:
            train, evaluation, report = cached
            report.cache_hit = True
            report.cache_path = str(directory)
            return TokenizedData(train, evaluation, report)
    records = read_all(cfg)
    train, train_stats, train_drops = _tokenize_with_stats(records.train, cfg, tokenizer, template, f"{key}-train")
    evaluation = eval_stats = None
    eval_drops: Counter[str] = Counter()
    if records.eval is not None:
        evaluation, eval_stats, eval_drops = _tokenize_with_stats(records.eval, cfg, tokenizer, template, f"{key}-eval")
    train, evaluation = _pack(train, cfg), _pack(evaluation, cfg) if evaluation is not None else None
    report = DataReport(
        records=records.records,
        dropped=merge_drops(records.dropped, train_drops, eval_drops),
        train=train_stats,
        eval=eval_stats,
        num_train_rows=len(train),
        num_eval_rows=len(evaluation) if evaluation is not None else None,
        packing=_packing_mode(cfg),
        cache_path=str(directory),
        fingerprint=key,
    )
    cache.save(directory, parts, train, evaluation, report)
    # Serve the saved copy: memory-mapped, and identical to what the next run will load.
    train, evaluation, _ = cache.load(directory, parts, strict=False) or (train, evaluation, report)
    return TokenizedData(train, evaluation, report)


def _tokenize_with_stats(
    records: Dataset, cfg: Any, tokenizer: Any, template: Any, key: str
) -> tuple[Dataset, Any, Counter[str]]:
    tokens = _tokenize(records, cfg, tokenizer, template, fingerprint=key)
    encoding = encoding_for(cfg.method.stage)
    trained = encoding.trained_counts(tokens)  # pairs: the fewer of chosen's and rejected's
    drops: Counter[str] = Counter()
    empty = [i for i, n in enumerate(trained) if n == 0]
    if empty:
        drops["no trained tokens after truncation"] = len(empty)
        keep = sorted(set(range(len(tokens))) - set(empty))
        if not keep:
            raise LmforgeError(
                f"no usable samples: all {len(tokens)} lost every trained token to cutoff_len {cfg.data.cutoff_len}",
                "raise cutoff_len",
            )
        tokens = tokens.select(keep)
        trained = [trained[i] for i in keep]
    lengths = encoding.lengths(tokens)
    stats = length_stats(lengths, tokens["full_length"][:], trained)
    return tokens.remove_columns("full_length"), stats, drops


def _tokenize(
    records: AnyDataset, cfg: Any, tokenizer: Any, template: Any, fingerprint: str | None = None
) -> AnyDataset:
    data = cfg.data
    encoding = encoding_for(cfg.method.stage)  # the stage's encoder (data/encoders.py)
    function, kwargs = encoding.batch, encoding.kwargs(cfg, tokenizer, template)
    options: dict[str, Any] = {"batched": True, "batch_size": data.preprocessing_batch_size, "fn_kwargs": kwargs}
    options["remove_columns"] = list(FEATURES)
    if isinstance(records, Dataset):
        options["num_proc"] = _workers(cfg, len(records))
        options["desc"] = "tokenizing"
        if fingerprint:
            options["new_fingerprint"] = f"{fingerprint}-{len(records)}-tokens"
    with environ_kept():  # datasets swaps os.environ when num_proc is set
        tokens = records.map(function, **options)
    if isinstance(tokens, IterableDataset):
        tokens = tokens.remove_columns("full_length")
    return tokens


def _pack(tokens: AnyDataset, cfg: Any) -> AnyDataset:
    mode = _packing_mode(cfg)
    if mode == "off":
        return tokens
    data = cfg.data
    if mode == "packing" and cfg.method.stage == "pt":
        function, kwargs = concat_chunk_batch, {"cutoff_len": data.cutoff_len}
    else:
        function, kwargs = pack_batch, {"cutoff_len": data.cutoff_len, "neat": mode == "neat_packing"}
    options: dict[str, Any] = {"batched": True, "batch_size": data.preprocessing_batch_size, "fn_kwargs": kwargs}
    options["remove_columns"] = ["input_ids", "labels"]
    if isinstance(tokens, Dataset):
        options["desc"] = "packing"
    return tokens.map(function, **options)


def _packing_mode(cfg: Any) -> str:
    data = cfg.data
    if data.neat_packing:
        return "neat_packing"
    packing = data.packing if data.packing is not None else cfg.method.stage == "pt"
    return "packing" if packing else "off"


def _workers(cfg: Any, size: int) -> int | None:
    """Worker processes only pay off on larger sets (each one re-imports and unpickles the tokenizer)."""
    workers = cfg.data.preprocessing_num_workers or min(os.cpu_count() or 1, 8)
    if workers <= 1 or size < 2 * cfg.data.preprocessing_batch_size:
        return None
    return workers
