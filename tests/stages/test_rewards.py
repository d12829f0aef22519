"""Reward functions (train/rewards.py): the built-ins' exact values, the math checker, the user's own
functions by module or file, and every refusal naming the reward_funcs entry."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lmforge.config import build_config
from lmforge.errors import LmforgeError
from lmforge.train.rewards import as_rational, final_answer, load_reward_functions, same_answer, weighted_sum


def rewards_of(tmp_path: Path, **flat):
    return load_reward_functions(build_config({"output_dir": str(tmp_path / "out"), "stage": "grpo", **flat}))


def test_builtins_score_exact_values(tmp_path: Path) -> None:
    rewards = rewards_of(
        tmp_path, reward_funcs="exact_match,format,length,math", reward_format_pattern=r"^<a>.*</a>$",
        reward_length_target=10, reward_weights="1,2,0.5,3",
    )  # fmt: skip
    assert [r.name for r in rewards] == ["exact_match", "format", "length", "math"]
    assert [r.weight for r in rewards] == [1.0, 2.0, 0.5, 3.0]
    assert [r.needs_reference for r in rewards] == [True, False, False, True]
    prompts = ["p"] * 3
    completions = ["<a>x\ny</a>", "The answer is 42", " 12345  "]
    references = ["<a>x y</a>", "#### 42", None]
    exact, fmt, length, math = (r.fn(prompts, completions, references) for r in rewards)
    assert exact == [1.0, 0.0, 0.0]
    assert fmt == [1.0, 0.0, 0.0]
    assert length == [1.0, 1 - 6 / 10, 1 - 2 / 10]  # 10, 16 and 8 characters
    assert math == [0.0, 1.0, 0.0]
    assert weighted_sum(rewards, prompts, completions, references) == [1 + 2 + 0.5, 0.5 * 0.4 + 3, 0.5 * 0.8]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so \\boxed{\\frac{1}{2}} and more", "\\frac{1}{2}"),
        ("nested \\boxed{x^{2}} end", "x^{2}"),
        ("work...\n#### 1,000\n", "1,000"),
        ("3 apples and 4 pears: 7.", "7"),
        ("no digits here", None),
    ],
)
def test_final_answer_is_boxed_then_hashes_then_last_number(text: str, answer: str | None) -> None:
    assert final_answer(text) == answer


def test_math_answers_compare_as_exact_rationals() -> None:
    assert as_rational("\\frac{3}{4}") == as_rational("0.75") == as_rational("3/4") == as_rational("75%")
    assert as_rational("$1,000.") == 1000
    assert as_rational("x + 1") is None
    assert same_answer("The result is \\boxed{0.5}", "#### 1/2")
    assert not same_answer("The result is \\boxed{0.51}", "#### 1/2")
    assert same_answer("\\boxed{x^{2}}", "\\boxed{ x^{2} }")  # not numbers: normalised text


def test_user_functions_by_module_and_by_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_rewards_mod.py").write_text(
        "def has_cat(completions, **kwargs):\n    return [float('cat' in c) for c in completions]\n"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "refs.py").write_text(
        "def same_length(completions, references):\n"
        "    return [float(len(c) == len(r or '')) for c, r in zip(completions, references)]\n"
    )
    monkeypatch.chdir(tmp_path)
    rewards = rewards_of(tmp_path, reward_funcs="my_rewards_mod:has_cat,sub/refs.py:same_length")
    assert str(tmp_path) not in sys.path  # the working directory was on sys.path only while importing
    scores = [r.fn(["p", "q"], ["a cat", "dog"], ["12345", None]) for r in rewards]
    assert scores == [[1.0, 0.0], [1.0, 0.0]]
    sys.modules.pop("my_rewards_mod", None)


@pytest.mark.parametrize(
    ("files", "funcs", "message"),
    [
        (
            {},
            "no_such_module_xyz:f",
            r"reward_funcs: no_such_module_xyz:f: module 'no_such_module_xyz' does not "
            r"import \(ModuleNotFoundError",
        ),
        ({}, "missing.py:f", r"reward_funcs: missing.py:f: file missing.py not found"),
        ({"bad.py": "import not_a_module_at_all\n"}, "bad.py:f", r"bad.py does not import \(ModuleNotFoundError"),
        ({"r.py": "def g(completions):\n    return []\n"}, "r.py:f", r"r.py:f: r.py has no attribute 'f'"),
        ({"r.py": "f = 3\n"}, "r.py:f", "f is not a function"),
        ({"r.py": "def f(samples, scores):\n    return []\n"}, "r.py:f", r"r.py:f takes \(samples, scores\)"),
        ({"r.py": "def f(prompts):\n    return []\n"}, "r.py:f", r"r.py:f takes \(prompts\)"),
        ({}, "exact", "unknown reward function 'exact'"),
    ],
)
def test_bad_reward_functions_are_refused_naming_the_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict, funcs: str, message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LmforgeError, match=message):
        rewards_of(tmp_path, reward_funcs=funcs)


def test_a_user_function_returning_the_wrong_count_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "r.py").write_text("def f(completions):\n    return [1.0]\n")
    monkeypatch.chdir(tmp_path)
    (reward,) = rewards_of(tmp_path, reward_funcs="r.py:f")
    with pytest.raises(LmforgeError, match=r"r.py:f returned a list of 1 items for 2 completions"):
        reward.fn(["p", "q"], ["a", "b"], [None, None])


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ({"reward_funcs": "format"}, "reward_funcs: format needs reward_format_pattern"),
        ({"reward_funcs": "length", "reward_format_pattern": "x"}, "reward_format_pattern is set but reward_funcs"),
        ({"reward_funcs": "math", "reward_length_target": 5}, "reward_length_target is set but reward_funcs"),
        ({"reward_funcs": "format", "reward_format_pattern": "(unclosed"}, "is not a valid regular expression"),
        ({"reward_funcs": "math,length", "reward_weights": 1.0}, "reward_weights has 1 values for 2 reward_funcs"),
    ],
)
def test_reward_keys_that_do_not_fit_are_refused(tmp_path: Path, flat: dict, message: str) -> None:
    with pytest.raises(LmforgeError, match=message):
        rewards_of(tmp_path, **flat)
