"""Reading benchmarks in LLaMA-Factory's layout, and the prompts built from their questions."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.eval.conftest import BENCHMARKS, write_benchmark

from lmforge.errors import LmforgeError
from lmforge.eval.benchmark import Question, load_benchmark, parse_task
from lmforge.eval.prompts import question_messages

ROW = ["What is 2 + 2?", "3", "4", "5", "6", "B"]


def test_task_names_split_at_the_last_underscore_and_validation_reads_val() -> None:
    assert parse_task("mmlu_test") == ("mmlu", "test")
    assert parse_task("ceval_validation") == ("ceval", "val")
    assert parse_task("lmforge_mini_zh_validation") == ("lmforge_mini_zh", "val")


def test_shipped_benchmarks_load_with_and_without_a_header() -> None:
    mini = load_benchmark("lmforge_mini_test", str(BENCHMARKS), need_dev=True)
    assert [s.key for s in mini] == ["elementary_arithmetic", "world_capitals", "word_opposites", "everyday_things"]
    assert [s.category for s in mini] == ["STEM", "Social Sciences", "Humanities", "Other"]
    assert all(len(s.questions) == 12 and len(s.dev) == 5 for s in mini)
    assert mini[0].questions[0] == Question("What is 13 - 5?", ("16", "2", "12", "8"), "D")
    zh = load_benchmark("lmforge_mini_zh_validation", str(BENCHMARKS), need_dev=False)
    assert zh[0].name == "小学算术" and len(zh[0].questions) == 8 and zh[0].dev == []
    assert zh[0].questions[0] == Question("二加四等于多少？", ("一", "九", "六", "三"), "C")


def test_only_the_requested_split_must_exist_and_dev_only_for_few_shot(tmp_path: Path) -> None:
    task_dir = write_benchmark(tmp_path / "tiny", {"sums": {"test": [ROW]}})
    (subject,) = load_benchmark("tiny_test", str(task_dir), need_dev=False)
    assert subject.questions == [Question("What is 2 + 2?", ("3", "4", "5", "6"), "B")]
    with pytest.raises(LmforgeError, match=r"sums_dev\.csv is missing: n_shot > 0 reads the 'dev' split"):
        load_benchmark("tiny_test", str(task_dir), need_dev=True)
    with pytest.raises(LmforgeError, match=r"sums_val\.csv is missing"):
        load_benchmark("tiny_validation", str(task_dir), need_dev=False)


def test_header_columns_are_found_by_name_in_any_order_and_case(tmp_path: Path) -> None:
    path = tmp_path / "cmmlu" / "data" / "test" / "law_test.csv"
    path.parent.mkdir(parents=True)
    path.write_text(",Question,A,B,C,D,Answer\n0,Q?,w,x,y,z,C\n", encoding="utf-8")
    (tmp_path / "cmmlu" / "mapping.json").write_text('{"law": {"name": "law", "category": "Humanities"}}')
    (subject,) = load_benchmark("cmmlu_test", str(tmp_path), need_dev=False)
    assert subject.questions == [Question("Q?", ("w", "x", "y", "z"), "C")]


def test_few_shot_prompt_is_a_conversation_with_the_subject_line_first() -> None:
    shot = Question("What is 1 + 1?", ("2", "3", "4", "5"), "A")
    asked = Question("What is 2 + 2?", ("3", "4", "5", "6"), "B")
    assert question_messages(asked, [shot], "arithmetic", "en") == [
        {
            "role": "user",
            "content": "The following are multiple choice questions (with answers) about arithmetic.\n\n"
            "What is 1 + 1?\nA. 2\nB. 3\nC. 4\nD. 5\nAnswer:",
        },
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:"},
    ]
    zh = question_messages(asked, [], "算术", "zh")
    assert zh[0]["content"].startswith("以下是中国关于算术考试的单项选择题，请选出其中的正确答案。\n\nWhat is 2 + 2?")
    assert zh[0]["content"].endswith("\n答案：")
