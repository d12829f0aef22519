"""BLEU-4 and ROUGE of generated answers against references, computed as LLaMA-Factory does, so
numbers from either tool compare:

- ROUGE-1/2/L F1 from ``rouge_chinese.Rouge`` over jieba word segments joined by spaces (jieba
  leaves English words whole and splits Chinese text into words); a pair where either side has
  no segment scores 0;
- BLEU-4 from nltk's ``sentence_bleu`` over *characters*, smoothed with ``method3``;
- each score ×100 rounded to 4 decimals per answer, then the mean over answers.

jieba writes a dictionary cache (``jieba.cache``) where its ``tmp_dir`` points: lmforge points it
at ``$LMFORGE_HOME/jieba`` rather than the shared /tmp.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

METRICS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")


@cache
def _jieba() -> Any:
    import jieba

    from lmforge.models.builtin import lmforge_home

    folder = lmforge_home() / "jieba"
    folder.mkdir(parents=True, exist_ok=True)
    jieba.dt.tmp_dir = str(folder)
    jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" lines are not ours to show
    return jieba


def pair_scores(prediction: str, reference: str) -> dict[str, float]:
    """The four scores of one answer, in percent, rounded as LLaMA-Factory rounds them."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from rouge_chinese import Rouge

    jieba = _jieba()
    hypothesis, target = " ".join(jieba.cut(prediction)), " ".join(jieba.cut(reference))
    if not hypothesis.split() or not target.split():
        rouge = dict.fromkeys(("rouge-1", "rouge-2", "rouge-l"), 0.0)
    else:
        scores = Rouge().get_scores(hypothesis, target)[0]
        rouge = {name: scores[name]["f"] for name in ("rouge-1", "rouge-2", "rouge-l")}
    bleu = sentence_bleu([list(reference)], list(prediction), smoothing_function=SmoothingFunction().method3)
    return {"bleu-4": round(bleu * 100, 4), **{name: round(value * 100, 4) for name, value in rouge.items()}}


def similarity(predictions: list[str], references: list[str]) -> dict[str, float]:
    """``predict_bleu-4``, ``predict_rouge-1``, ``predict_rouge-2``, ``predict_rouge-l``: means over answers."""
    per_pair = [pair_scores(p, r) for p, r in zip(predictions, references, strict=True)]
    n = max(len(per_pair), 1)
    return {f"predict_{name}": sum(s[name] for s in per_pair) / n for name in METRICS}
