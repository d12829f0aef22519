"""Eval group: multiple-choice benchmarks (`lmforge eval`) and predictions (`do_predict`).

Key names follow LLaMA-Factory's evaluation arguments, so its eval YAMLs run unchanged; the seed
is the run's ``seed`` (train group).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str | None = Field(
        None, description="Benchmark and split as <benchmark>_<split>: mmlu_test, ceval_validation, cmmlu_test."
    )
    task_dir: str = Field(
        "evaluation",
        description="Folder holding <benchmark>/mapping.json and its CSVs (the shipped one: data/benchmarks).",
    )
    n_shot: int = Field(5, ge=0, description="Few-shot examples from the dev split before each question.")
    lang: Literal["en", "zh"] = Field("en", description="Prompt wording: en or zh.")
    batch_size: int = Field(4, gt=0, description="Questions scored per forward pass.")
    save_dir: str | None = Field(None, description="Where lmforge eval writes its JSON results (optional).")
    do_predict: bool = Field(
        False, description="Generate an answer for every eval_dataset record (generated_predictions.jsonl)."
    )
    predict_with_generate: bool = Field(
        False, description="With do_predict: generate answers and score them with BLEU-4 and ROUGE."
    )
    compute_accuracy: bool = Field(
        False, description="At each evaluation during training, also report token accuracy at trained positions."
    )
