"""Data group: which data sets, how they are rendered with a template and turned into tokens."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = Field(
        "auto",
        description="Chat template name (chatml, qwen, llama3, ...), a YAML file of a custom "
        "template, or auto: the tokenizer's own chat template.",
    )
    dataset: list[str] | None = Field(
        None, description="Training data sets: names in dataset_info.json or file paths (comma-separated)."
    )
    dataset_dir: str = Field("data", description="Folder holding dataset_info.json and the data files.")
    eval_dataset: list[str] | None = Field(None, description="Evaluation data sets (names or paths).")
    cutoff_len: int = Field(2048, gt=0, description="Maximum tokens per sample after rendering.")
    max_samples: int | None = Field(None, gt=0, description="Keep at most this many records per data set.")
    val_size: float = Field(
        0.0, ge=0, description="Held-out share (<1) or count (>=1) of the training set for evaluation."
    )
    train_on_prompt: bool = Field(False, description="Also train on prompt tokens (system and user turns).")
    mask_history: bool = Field(False, description="Train only the last assistant turn of each conversation.")
    packing: bool | None = Field(
        None, description="Pack several samples into one sequence of cutoff_len; default: on for pt, off for sft."
    )
    neat_packing: bool = Field(
        False, description="Packing in which packed samples cannot attend to each other (implies packing)."
    )
    mix_strategy: Literal["concat", "interleave_under", "interleave_over"] = Field(
        "concat", description="How several data sets are combined."
    )
    interleave_probs: list[float] | None = Field(
        None, description="Sampling probabilities of the data sets with an interleave strategy."
    )
    streaming: bool = Field(False, description="Read data sets lazily (for files larger than memory).")
    buffer_size: int = Field(16384, gt=0, description="Shuffle buffer size when streaming.")
    preprocessing_num_workers: int | None = Field(
        None, ge=1, description="Processes used to tokenize; default: one per CPU core, at most 8."
    )
    preprocessing_batch_size: int = Field(1000, gt=0, description="Records per tokenization batch.")
    overwrite_cache: bool = Field(False, description="Rebuild the tokenized cache even when it is current.")
    tokenized_path: str | None = Field(
        None, description="Save the tokenized data set here, or load it from here when it exists."
    )
    default_system: str | None = Field(None, description="System prompt used when a record has none.")
    template_checks: Literal["strict", "warn", "off"] = Field(
        "strict",
        description="Pre-flight template checks: strict (errors stop the run), warn (report only), off.",
    )
