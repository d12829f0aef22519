"""Predictions (do_predict): BLEU/ROUGE as LLaMA-Factory computes them, and the predict-only run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmforge.cli import main as lmforge
from lmforge.eval.similarity import _jieba, pair_scores, similarity

RECORDS = [
    {"instruction": "Say hi.", "output": "Hi!"},
    {"instruction": "Count to three.", "output": "1 2 3"},
    {"instruction": "用中文问好。", "output": "你好！"},
]


def test_english_scores_match_hand_computation() -> None:
    # Characters: "the cat sat" is a prefix of the reference, so every n-gram precision is 1 and
    # BLEU is the brevity penalty exp(1 - 22/11). ROUGE-N counts distinct n-grams (rouge-chinese):
    # unigrams 3 of {the, cat, sat, on, mat} -> P 1, R 3/5, F 0.75; bigrams 2 of 5 -> F 4/7;
    # ROUGE-L: LCS 3 of 6 reference words -> P 1, R 1/2, F 2/3.
    assert pair_scores("the cat sat", "the cat sat on the mat") == {
        "bleu-4": 36.7879,
        "rouge-1": 75.0,
        "rouge-2": 57.1429,
        "rouge-l": 66.6667,
    }


def test_chinese_scores_match_hand_computation() -> None:
    # jieba: 今天天气/很/好 against 今天天气/不好: one shared word -> P 1/3, R 1/2, F 0.4 (ROUGE-1
    # and ROUGE-L), no shared bigram. BLEU over characters: 1- to 4-gram precisions 5/6, 3/5, 2/4,
    # 1/3, same length (no brevity penalty).
    assert list(_jieba().cut("今天天气很好")) == ["今天天气", "很", "好"]
    expected_bleu = round(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, 4)
    assert pair_scores("今天天气很好", "今天天气不好") == {
        "bleu-4": expected_bleu,
        "rouge-1": 40.0,
        "rouge-2": 0.0,
        "rouge-l": 40.0,
    }


def test_corpus_scores_are_means_and_an_empty_answer_scores_zero() -> None:
    scores = similarity(["the cat sat", ""], ["the cat sat on the mat", "x"])
    assert scores == pytest.approx(
        {
            "predict_bleu-4": 36.7879 / 2,
            "predict_rouge-1": 37.5,
            "predict_rouge-2": 57.1429 / 2,
            "predict_rouge-l": 66.6667 / 2,
        }
    )


def test_jieba_keeps_its_cache_under_lmforge_home() -> None:
    from lmforge.models.builtin import lmforge_home

    jieba = _jieba()
    list(jieba.cut("缓存"))
    assert Path(jieba.dt.tmp_dir) == lmforge_home() / "jieba"
    assert (lmforge_home() / "jieba" / "jieba.cache").is_file()


@pytest.mark.parametrize("command", ["train", "eval"])
def test_predict_only_run_writes_predictions_and_their_scores(
    tiny_model_dir: Path, tmp_path: Path, command: str, capsys
) -> None:
    (tmp_path / "eval.json").write_text(json.dumps(RECORDS, ensure_ascii=False))
    out = tmp_path / "out"
    args = [
        command,
        f"model_name_or_path={tiny_model_dir}",
        "template=chatml",
        f"eval_dataset={tmp_path / 'eval.json'}",
    ]
    args += [
        "do_predict=true",
        "predict_with_generate=true",
        "do_sample=false",
        "max_new_tokens=6",
        f"output_dir={out}",
    ]
    assert lmforge(args) == 0
    assert f"lmforge: predictions in {out}" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "generated_predictions.jsonl").read_text().splitlines()]
    assert [row["label"] for row in rows] == ["Hi!", "1 2 3", "你好！"]
    assert rows[0]["prompt"] == "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"
    assert all(set(row) == {"prompt", "predict", "label"} for row in rows)
    results = json.loads((out / "predict_results.json").read_text())
    assert results["predict_samples"] == 3
    expected = similarity([row["predict"] for row in rows], [row["label"] for row in rows])
    assert {k: results[k] for k in expected} == pytest.approx(expected)
    assert lmforge(args) == 1  # the predictions are there: refused without overwrite_output_dir
