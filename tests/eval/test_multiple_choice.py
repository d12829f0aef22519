"""Scoring multiple-choice benchmarks: the scoring call, `lmforge eval` end to end, adapters."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from tests.eval.conftest import BENCHMARKS, write_benchmark

from lmforge.cli import main as lmforge
from lmforge.config import build_config
from lmforge.eval.multiple_choice import answer_token_ids, load_unmerged
from lmforge.eval.scoring import next_token_logprobs


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir: Path, tokenizer):
    return load_unmerged(build_config({"model_name_or_path": str(tiny_model_dir)}), tokenizer)


def test_batched_left_padded_scores_equal_each_prompt_scored_alone(tiny_model, tokenizer) -> None:
    prompts = [tokenizer.encode(t) for t in ["Hello there, how are", "A", "The capital of France is the city of"]]
    wanted = [tokenizer.encode(t)[0] for t in ["A", " B", " you", " Paris"]]
    batched = next_token_logprobs(tiny_model, prompts, wanted, pad_token_id=tokenizer.pad_token_id, batch_size=2)
    for row, ids in enumerate(prompts):
        with torch.inference_mode():
            alone = torch.log_softmax(tiny_model(torch.tensor([ids])).logits[0, -1], dim=-1)[wanted]
        torch.testing.assert_close(batched[row], alone, atol=1e-5, rtol=0)


def test_answer_letters_are_read_with_and_without_a_leading_space(tokenizer) -> None:
    # SmolLM2: "A" is id 49, " A" id 330, each a single token.
    assert answer_token_ids(tokenizer) == [[49, 330], [50, 389], [51, 340], [52, 422]]


def test_eval_twice_gives_identical_scores_and_refuses_a_used_save_dir(tiny_model_dir: Path, tmp_path: Path) -> None:
    args = ["eval", f"model_name_or_path={tiny_model_dir}", "template=chatml", f"task_dir={BENCHMARKS}"]
    args += ["task=lmforge_mini_zh_validation", "lang=zh", "n_shot=2", "batch_size=3"]
    assert lmforge([*args, f"save_dir={tmp_path / 'one'}"]) == 0
    assert lmforge([*args, f"save_dir={tmp_path / 'two'}"]) == 0
    first = json.loads((tmp_path / "one" / "scores.json").read_text())
    assert first == json.loads((tmp_path / "two" / "scores.json").read_text())
    assert set(first["subjects"]) == {"elementary_arithmetic", "everyday_things"}
    predictions = json.loads((tmp_path / "one" / "results.json").read_text())
    assert len(predictions["elementary_arithmetic"]) == 8 and set(predictions["everyday_things"]["0"]) <= set("ABCD")
    answers = (BENCHMARKS / "lmforge_mini_zh" / "data" / "val" / "everyday_things_val.csv").read_text().splitlines()
    right = sum(predictions["everyday_things"][str(i)] == row.split(",")[6] for i, row in enumerate(answers[1:]))
    assert first["subjects"]["everyday_things"]["accuracy"] == round(100 * right / 8, 2)
    assert "Average" in (tmp_path / "one" / "results.log").read_text()
    assert lmforge([*args, f"save_dir={tmp_path / 'one'}"]) == 1


def test_adapter_is_evaluated_unmerged_with_its_own_weights(tiny_model_dir: Path, tokenizer, tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora).save_pretrained(tmp_path / "adapter")
    cfg = build_config({"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(tmp_path / "adapter")})
    model = load_unmerged(cfg, tokenizer)
    assert isinstance(model, PeftModel)
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "adapter")
    prompt = [tokenizer.encode("Question: which letter?")]
    letters = [ids[0] for ids in answer_token_ids(tokenizer)]
    scored = next_token_logprobs(model, prompt, letters, pad_token_id=tokenizer.pad_token_id)
    expected = next_token_logprobs(reference.eval(), prompt, letters, pad_token_id=tokenizer.pad_token_id)
    with reference.disable_adapter():
        base = next_token_logprobs(reference, prompt, letters, pad_token_id=tokenizer.pad_token_id)
    torch.testing.assert_close(scored, expected)
    assert not torch.allclose(scored, base, atol=1e-4)


def _stated_rows(stated: str, labels: str) -> list[list[str]]:
    """Questions that state their answer (three times: SmolLM2-135M follows that reliably)."""
    rng = random.Random(0)
    words = ["apple", "river", "chair", "cloud", "tiger", "piano", "stone", "bread"]
    return [[" ".join([f"The answer is {s}."] * 3), *rng.sample(words, 4), label] for s, label in zip(stated, labels)]


def test_builtin_model_on_shipped_and_answer_given_benchmarks(builtin_dir: Path, tmp_path: Path, capsys) -> None:
    """Per-subject accuracies are printed for the shipped benchmark; questions that state their
    answer score near-perfect, the same questions with shuffled answers near chance (25%)."""
    base = ["eval", f"model_name_or_path={builtin_dir}", "batch_size=8"]
    shipped = [f"task_dir={BENCHMARKS}", "task=lmforge_mini_validation", "n_shot=0", "max_samples=1"]
    assert lmforge([*base, *shipped]) == 0
    table = capsys.readouterr().out
    for name in ["elementary arithmetic", "world capitals", "word opposites", "everyday things", "Average"]:
        assert name in table
    dev = _stated_rows("DB", "DB")
    subjects = {
        "stated": {"dev": dev, "test": _stated_rows("ADBCCA", "ADBCCA")},
        "shuffled": {"dev": dev, "test": _stated_rows("ADBC", "BDCA")},  # 1 of 4 labels kept
    }
    task_dir = write_benchmark(tmp_path / "given", subjects)
    out = tmp_path / "scores"
    assert lmforge([*base, f"task_dir={task_dir}", "task=given_test", "n_shot=2", f"save_dir={out}"]) == 0
    accuracy = {k: v["accuracy"] for k, v in json.loads((out / "scores.json").read_text())["subjects"].items()}
    assert accuracy["stated"] >= 83.33, accuracy
    assert accuracy["shuffled"] <= 50, accuracy
