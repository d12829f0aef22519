"""Which tokenized rows each stage trains on: the record fields it needs and its batch encoder.

The data side of a stage (``train/stages/<name>.py`` names its ``Encoding``): ``data/pipeline.py``
asks ``encoding_for(stage)`` for the ``datasets.map`` function, the columns that hold trained
tokens (for the length statistics and the drop of rows truncation left untrained), and the check
that a data set carries the fields the stage needs, run before any record is converted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lmforge.data.pairwise import feedback_batch, pairwise_batch
from lmforge.data.processors import IGNORE_INDEX, pretrain_batch, supervised_batch
from lmforge.data.prompts import prompt_batch
from lmforge.data.registry import DatasetAttr
from lmforge.errors import LmforgeError


def _no_check(attr: DatasetAttr, stage: str) -> None:
    return None


@dataclass(frozen=True)
class Encoding:
    """One way of turning canonical records into tokenized rows.

    ``sequences``: the (input_ids, labels) column pairs of one row; a row is kept when every one of
    them still trains a token after truncation, and its statistics are those of its longest one.
    """

    name: str
    batch: Callable[..., dict[str, list[Any]]]
    kwargs: Callable[[Any, Any, Any], dict[str, Any]]  # (cfg, tokenizer, template) -> batch kwargs
    sequences: tuple[tuple[str, str], ...] = (("input_ids", "labels"),)
    check_attr: Callable[[DatasetAttr, str], None] = field(default=_no_check)

    def trained_counts(self, tokens: Any) -> list[int]:
        """Per row, the fewest trained tokens among its sequences (slicing a column reads it in one batch)."""
        per_sequence = [
            [len(labels) - labels.count(IGNORE_INDEX) for labels in tokens[label_column][:]]
            for _, label_column in self.sequences
        ]
        return [min(counts) for counts in zip(*per_sequence, strict=True)]

    def lengths(self, tokens: Any) -> list[int]:
        per_sequence = [[len(ids) for ids in tokens[ids_column][:]] for ids_column, _ in self.sequences]
        return [max(lengths) for lengths in zip(*per_sequence, strict=True)]


def _pretrain_kwargs(cfg: Any, tokenizer: Any, template: Any) -> dict[str, Any]:
    return {"tokenizer": tokenizer, "cutoff_len": cfg.data.cutoff_len}


def _supervised_kwargs(cfg: Any, tokenizer: Any, template: Any) -> dict[str, Any]:
    data = cfg.data
    return {
        "tokenizer": tokenizer,
        "template": template,
        "cutoff_len": data.cutoff_len,
        "train_on_prompt": data.train_on_prompt,
        "mask_history": data.mask_history,
        "default_system": data.default_system,
    }


def _preference_kwargs(cfg: Any, tokenizer: Any, template: Any) -> dict[str, Any]:
    data = cfg.data
    return {"tokenizer": tokenizer, "template": template, "cutoff_len": data.cutoff_len,
            "default_system": data.default_system}  # fmt: skip


def _check_pairs(attr: DatasetAttr, stage: str) -> None:
    """A pairwise stage needs a chosen and a rejected answer per record, marked ranking: true."""
    fix = (
        "mark the data set ranking: true in dataset_info.json with chosen and rejected columns "
        "(the format of LLaMA-Factory's dpo_en_demo.json, e.g. data/dpo_demo.json), or train it with stage sft"
    )
    if not attr.ranking:
        raise LmforgeError(
            f"data set {attr.name!r} ({attr.path}) is not pairwise (no chosen/rejected answers), "
            f"and stage {stage} trains on preference pairs",
            fix,
        )
    missing = [key for key in ("chosen", "rejected") if not attr.column(key)]
    if missing:
        raise LmforgeError(
            f"data set {attr.name!r} ({attr.path}) is marked ranking but names no {' and no '.join(missing)} "
            f"column, which stage {stage} needs",
            "add them to its dataset_info.json entry: columns: {chosen: chosen, rejected: rejected}",
        )


def _check_feedback(attr: DatasetAttr, stage: str) -> None:
    """KTO needs each record's answer marked desirable or not (a boolean kto_tag column)."""
    if not attr.column("kto_tag"):
        raise LmforgeError(
            f"data set {attr.name!r} ({attr.path}) has no kto_tag column, and stage kto needs each answer "
            "labelled desirable (true) or undesirable (false)",
            "map the label column in its dataset_info.json entry: columns: {kto_tag: <column>} "
            "(the format of LLaMA-Factory's kto_en_demo.json, e.g. data/kto_demo.json)",
        )


PRETRAIN = Encoding("pretrain", pretrain_batch, _pretrain_kwargs)
SUPERVISED = Encoding("supervised", supervised_batch, _supervised_kwargs)
PAIRWISE = Encoding(
    "pairwise",
    pairwise_batch,
    _preference_kwargs,
    sequences=(("chosen_input_ids", "chosen_labels"), ("rejected_input_ids", "rejected_labels")),
    check_attr=_check_pairs,
)
FEEDBACK = Encoding(
    "feedback",
    feedback_batch,
    _preference_kwargs,
    sequences=(("input_ids", "labels"), ("kl_input_ids", "kl_labels")),
    check_attr=_check_feedback,
)
# Stages that generate (grpo): the prompt before the last answer, which is the reference (data/prompts.py).
PROMPTS = Encoding(
    "prompts", prompt_batch, _preference_kwargs, sequences=(("prompt_ids", "prompt_ids"),)
)  # a prompt's tokens count as the row's for the statistics; one over cutoff_len is empty, so dropped

# Stage name -> encoding; each stage module in train/stages/ names the same object (a test checks).
ENCODINGS: dict[str, Encoding] = {"pt": PRETRAIN, "sft": SUPERVISED, "rm": PAIRWISE, "dpo": PAIRWISE, "kto": FEEDBACK,
             "grpo": PROMPTS, "ppo": PROMPTS, "distill": SUPERVISED}  # fmt: skip


def encoding_for(stage: str) -> Encoding:
    if stage not in ENCODINGS:
        raise LmforgeError(f"stage {stage!r} has no data encoding", f"use one of: {', '.join(ENCODINGS)}")
    return ENCODINGS[stage]
