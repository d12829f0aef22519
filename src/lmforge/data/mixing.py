"""Combining several data sets (concat or interleave), capping their size and holding out eval data.

Interleaving follows `datasets.interleave_datasets`: ``interleave_under`` stops when the first data
set runs out (smaller mixes, no repeats), ``interleave_over`` repeats the smaller ones until every
set has been seen once (larger mixes, repeated records).
"""

from __future__ import annotations

from datasets import Dataset, IterableDataset, concatenate_datasets, interleave_datasets

from lmforge.errors import LmforgeError

AnyDataset = Dataset | IterableDataset


def take(dataset: AnyDataset, count: int) -> AnyDataset:
    """The first ``count`` records (``max_samples``)."""
    if isinstance(dataset, IterableDataset):
        return dataset.take(count)
    return dataset.select(range(min(count, len(dataset))))


def resample(dataset: Dataset, num_samples: int, seed: int) -> Dataset:
    """``num_samples`` records drawn without repeats, repeating the whole set when it asks for more."""
    import numpy as np

    if len(dataset) == 0:
        return dataset
    rng = np.random.default_rng(seed)
    repeats, rest = divmod(num_samples, len(dataset))
    indices = list(range(len(dataset))) * repeats + rng.permutation(len(dataset))[:rest].tolist()
    return dataset.select(indices)


def mix(datasets: list[AnyDataset], strategy: str, probs: list[float] | None, seed: int) -> AnyDataset:
    """One data set from several, per ``mix_strategy``."""
    if len(datasets) == 1:
        return datasets[0]
    if strategy == "concat":
        return concatenate_datasets(datasets)
    if probs is not None:
        if len(probs) != len(datasets):
            raise LmforgeError(
                f"interleave_probs has {len(probs)} values for {len(datasets)} data sets",
                "give one probability per data set",
            )
        total = sum(probs)
        if total <= 0 or any(p < 0 for p in probs):
            raise LmforgeError(f"interleave_probs {probs} must be non-negative with a positive sum")
        probs = [p / total for p in probs]
    stopping = "first_exhausted" if strategy == "interleave_under" else "all_exhausted"
    return interleave_datasets(datasets, probabilities=probs, seed=seed, stopping_strategy=stopping)


def split_eval(dataset: Dataset, val_size: float, seed: int) -> tuple[Dataset, Dataset]:
    """Hold out ``val_size`` (share if < 1, count if >= 1) of the training records, shuffled by seed."""
    count = int(val_size) if val_size >= 1 else round(len(dataset) * val_size)
    if not 0 < count < len(dataset):
        raise LmforgeError(
            f"val_size {val_size} leaves no training or no eval records from {len(dataset)} records",
            "use a share between 0 and 1 or a smaller count",
        )
    parts = dataset.train_test_split(test_size=count, seed=seed, shuffle=True)
    return parts["train"], parts["test"]
