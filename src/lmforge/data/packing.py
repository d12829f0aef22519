"""Packing: several tokenized samples per sequence of at most ``cutoff_len`` tokens (fewer pad tokens).

Samples are placed best-fit-decreasing within each preprocessing batch, so every sequence but a few is
nearly full and no sample is split. ``position_ids`` go with each packed row:

- ``neat_packing``: they restart at 0 at each sample. With no attention_mask, transformers (5.x,
  ``masking_utils.find_packed_sequence_indices``) turns restarts into a block-diagonal mask for sdpa
  and eager, so packed samples cannot see each other and each gets the logits it would get alone.
- plain ``packing``: the row is one sequence (positions 0..n-1, full causal attention across the
  samples, as LLaMA-Factory's packing). Cheaper to reason about, but a sample can attend to its
  neighbours. For stage pt, plain packing concatenates texts and cuts the stream into full rows.
"""

from __future__ import annotations

import bisect
from typing import Any


def best_fit_bins(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices of samples grouped into bins of at most ``capacity`` tokens (best fit, longest first)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    spaces: list[tuple[int, int]] = []  # (space left, bin index), sorted
    bins: list[list[int]] = []
    for i in order:
        pos = bisect.bisect_left(spaces, (lengths[i], -1))
        if pos < len(spaces):
            space, b = spaces.pop(pos)
        else:
            space, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        left = space - lengths[i]
        if left > 0:
            bisect.insort(spaces, (left, b))
    return bins


def pack_batch(batch: dict[str, list[Any]], *, cutoff_len: int, neat: bool) -> dict[str, list[Any]]:
    """Batched `datasets.map` function: rows of samples → packed rows with ``position_ids``."""
    out: dict[str, list[Any]] = {"input_ids": [], "labels": [], "position_ids": []}
    lengths = [len(ids) for ids in batch["input_ids"]]
    for group in best_fit_bins(lengths, cutoff_len):
        group.sort()  # keep the data order inside a row
        input_ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in group:
            input_ids += batch["input_ids"][i]
            labels += batch["labels"][i]
            positions += list(range(lengths[i])) if neat else []
        out["input_ids"].append(input_ids)
        out["labels"].append(labels)
        out["position_ids"].append(positions if neat else list(range(len(input_ids))))
    return out


def concat_chunk_batch(batch: dict[str, list[Any]], *, cutoff_len: int) -> dict[str, list[Any]]:
    """Stage pt plain packing: one token stream cut into rows of exactly ``cutoff_len`` (last may be short)."""
    stream = [token for ids in batch["input_ids"] for token in ids]
    rows = [stream[i : i + cutoff_len] for i in range(0, len(stream), cutoff_len)]
    return {"input_ids": rows, "labels": [list(r) for r in rows], "position_ids": [list(range(len(r))) for r in rows]}
