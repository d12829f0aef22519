"""``run_benchmark(cfg)``: a multiple-choice benchmark, top to bottom.

task → questions (all CSVs read and checked before any weight loads) → tokenizer + the run's
chat template → model, adapters attached unmerged → one prompt per question, ending with the
assistant header → next-token log-probabilities of the answer letters, batched → accuracies.

A letter's score is the log of the summed probability of its spellings as a next token ("A" and
" A" where they are different tokens), so a model that answers with or without a leading space is
read alike; the prediction is the best-scoring letter. Scoring is deterministic: two runs with
the same config give the same numbers. Few-shot examples come from the dev split, drawn with
``seed`` per subject when dev holds more than ``n_shot``; when a prompt would exceed
``cutoff_len``, that question gets fewer shots. ``max_samples`` keeps the first questions of each
subject (a quick look, not a score to report).
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from lmforge.config import RunConfig
from lmforge.errors import LmforgeError
from lmforge.eval.benchmark import CHOICES, Question, Subject, load_benchmark
from lmforge.eval.prompts import question_messages
from lmforge.eval.results import EvalResults, SubjectResult, check_save_dir, save_results
from lmforge.eval.scoring import next_token_logprobs

logger = logging.getLogger(__name__)


def run_benchmark(cfg: RunConfig) -> EvalResults:
    ev = cfg.eval
    check_save_dir(ev.save_dir, cfg.train.overwrite_output_dir)
    subjects = load_benchmark(ev.task, ev.task_dir, need_dev=ev.n_shot > 0)
    if cfg.data.max_samples:  # a quick look: the first max_samples questions of each subject
        subjects = [replace(s, questions=s.questions[: cfg.data.max_samples]) for s in subjects]
    tokenizer, template = _setup_tokenizer_and_template(cfg)
    model = load_unmerged(cfg, tokenizer)
    letters = answer_token_ids(tokenizer)
    results = EvalResults(task=str(ev.task))
    for subject in subjects:
        prompts = _prompts(subject, cfg, tokenizer, template)
        predictions = predict_letters(model, prompts, letters, tokenizer.pad_token_id, ev.batch_size)
        answers = [q.answer for q in subject.questions]
        results.subjects.append(SubjectResult(subject.key, subject.name, subject.category, predictions, answers))
        logger.info("%s: %.2f", subject.name, results.subjects[-1].accuracy)
    if ev.save_dir:
        save_results(results, ev.save_dir)
    return results


def _setup_tokenizer_and_template(cfg: RunConfig) -> tuple[Any, Any]:
    """A trained adapter's folder holds the tokenizer with the chat template of training: use it."""
    from lmforge.models.tokenizer import build_tokenizer_and_template, load_tokenizer

    adapters = cfg.model.adapter_name_or_path or []
    folder = adapters[-1] if adapters and (Path(adapters[-1]) / "tokenizer_config.json").is_file() else None
    built = build_tokenizer_and_template(cfg, load_tokenizer(cfg.model, folder=folder))
    return built.tokenizer, built.template


def load_unmerged(cfg: RunConfig, tokenizer: Any) -> Any:
    """The base model with the last adapter attached, not merged: the weights that were trained,
    exactly (merging rounds, and cannot be undone on a quantized base). Earlier adapters in the
    list were trained on top of each other's merge, so they are merged first."""
    from peft import PeftModel

    from lmforge.models.loader import load_model

    adapters = cfg.model.adapter_name_or_path or []
    model = load_model(cfg.model.model_copy(update={"adapter_name_or_path": None}), tokenizer)
    for i, path in enumerate(adapters):
        try:
            model = PeftModel.from_pretrained(model, path)
        except (OSError, ValueError) as err:
            raise LmforgeError(f"cannot load adapter {path}: {str(err).splitlines()[0]}") from None
        if i < len(adapters) - 1:
            model = model.merge_and_unload()
    return model.eval()


def answer_token_ids(tokenizer: Any) -> list[list[int]]:
    """Per letter, the distinct token ids of "A" and " A" (the last token of each spelling)."""
    ids = []
    for letter in CHOICES:
        spellings = {tokenizer.encode(text, add_special_tokens=False)[-1] for text in (letter, f" {letter}")}
        ids.append(sorted(spellings))
    return ids


def predict_letters(
    model: Any, prompts: list[list[int]], letters: list[list[int]], pad_token_id: int, batch_size: int
) -> list[str]:
    flat = [token for spellings in letters for token in spellings]
    logprobs = next_token_logprobs(model, prompts, flat, pad_token_id=pad_token_id, batch_size=batch_size)
    scores, start = [], 0
    for spellings in letters:
        scores.append(torch.logsumexp(logprobs[:, start : start + len(spellings)], dim=1))
        start += len(spellings)
    best = torch.stack(scores, dim=1).argmax(dim=1)
    return [CHOICES[i] for i in best.tolist()]


def _prompts(subject: Subject, cfg: RunConfig, tokenizer: Any, template: Any) -> list[list[int]]:
    ev, limit = cfg.eval, cfg.data.cutoff_len
    shots = _shots(subject, ev.n_shot, cfg.train.seed)
    prompts = []
    for index, question in enumerate(subject.questions):
        ids = _encode(question, shots, subject, ev.lang, tokenizer, template)
        fewer = list(shots)
        while len(ids) > limit and fewer:
            fewer.pop()
            ids = _encode(question, fewer, subject, ev.lang, tokenizer, template)
        if len(ids) > limit:
            raise LmforgeError(
                f"subject {subject.key!r} question {index}: the prompt is {len(ids)} tokens, over cutoff_len {limit}",
                f"raise cutoff_len to at least {len(ids)}",
            )
        prompts.append(ids)
    return prompts


def _shots(subject: Subject, n_shot: int, seed: int) -> list[Question]:
    if n_shot == 0:
        return []
    if len(subject.dev) < n_shot:
        logger.warning(
            "subject %s: dev holds %d questions, fewer than n_shot %d", subject.key, len(subject.dev), n_shot
        )
        return list(subject.dev)
    if len(subject.dev) == n_shot:
        return list(subject.dev)
    return random.Random(f"{seed}:{subject.key}").sample(subject.dev, n_shot)


def _encode(
    question: Question, shots: list[Question], subject: Subject, lang: str, tokenizer: Any, template: Any
) -> list[int]:
    return template.encode_prompt(tokenizer, question_messages(question, shots, subject.name, lang))
