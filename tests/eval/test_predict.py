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


def test_train_then_predict_answers_as_the_saved_adapter_does(tiny_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text(json.dumps(RECORDS, ensure_ascii=False))
    common = [f"model_name_or_path={tiny_model_dir}", "template=chatml", f"eval_dataset={tmp_path / 'data.json'}"]
    common += ["do_predict=true", "predict_with_generate=true", "do_sample=false", "max_new_tokens=6"]
    trained, again = tmp_path / "trained", tmp_path / "again"
    train = [f"dataset={tmp_path / 'data.json'}", "do_train=true", "max_steps=2", "learning_rate=1e-2"]
    assert lmforge(["train", *common, *train, "cutoff_len=64", "save_strategy=no", f"output_dir={trained}"]) == 0
    assert (trained / "adapter_model.safetensors").is_file()
    assert lmforge(["train", *common, f"adapter_name_or_path={trained}", f"output_dir={again}"]) == 0
    after_training = (trained / "generated_predictions.jsonl").read_text()
    assert after_training == (again / "generated_predictions.jsonl").read_text()


def test_predictions_after_training_use_the_saved_model(tmp_path: Path) -> None:
    from lmforge.config import build_config
    from lmforge.eval.predict import trained_model_config

    out = tmp_path / "out"
    lora = build_config({"adapter_name_or_path": "a,b", "do_predict": True})
    assert trained_model_config(lora, out).model.adapter_name_or_path == ["a", str(out)]  # b was continued
    stacked = build_config({"adapter_name_or_path": "a,b", "create_new_adapter": True})
    assert trained_model_config(stacked, out).model.adapter_name_or_path == ["a", "b", str(out)]
    full = trained_model_config(build_config({"finetuning_type": "full"}), out).model
    assert (full.model_name_or_path, full.adapter_name_or_path) == (str(out), None)
