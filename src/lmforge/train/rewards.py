"""Reward functions for the online stages (grpo; ppo without a reward model): ``reward_funcs``.

The interface, shared by every stage that scores completions:

    rewards = load_reward_functions(cfg)            # list[Reward], checked before any weight loads
    scores = weighted_sum(rewards, prompts, completions, references)   # list[float], one per completion

A ``RewardFn`` takes ``(prompts, completions, references)`` — three lists of the same length: the
prompt as the model saw it (rendered with the run's template), the generated answer (decoded, special
tokens skipped) and the record's last assistant answer or None (prompt-only records) — and returns
one float per completion. ``Reward.fn`` is always called that way; user functions are adapted.

Built-ins (``reward_funcs: exact_match,format``):
- ``exact_match``: 1 when the answer equals the reference, whitespace runs collapsed, else 0;
- ``format``: 1 when ``re.search(reward_format_pattern, answer, re.DOTALL)`` finds a match, else 0;
- ``length``: ``max(0, 1 - |len(answer) - T| / T)`` with T = ``reward_length_target`` characters;
- ``math``: 1 when the final answer (the last ``\\boxed{...}``, else after ``####``, else the last
  number) equals the reference's, compared as exact rationals (``0.5`` = ``1/2`` = ``\\frac{1}{2}``,
  ``1,000`` = ``1000``), else as normalised text. Our own small checker: ``math_verify`` is not
  installed; it does not simplify symbolic expressions.

User functions: ``module:function`` (imported with the working directory on ``sys.path``) or
``path.py:function`` (a file, relative to the working directory). The function must take
``completions`` and may take ``prompts`` and ``references`` by those names, or ``**kwargs`` (trl's
style: it then gets all three). Import errors, a missing attribute and a signature that needs other
arguments are refused with one line naming the entry, before any weight loads.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from lmforge.errors import LmforgeError

RewardFn = Callable[[list[str], list[str], list[str | None]], list[float]]

BUILTINS = ("exact_match", "format", "length", "math")
NEEDS_REFERENCE = ("exact_match", "math")
ARGUMENTS = ("prompts", "completions", "references")


@dataclass(frozen=True)
class Reward:
    name: str  # as written in reward_funcs
    fn: RewardFn
    weight: float
    needs_reference: bool  # every record must have a last assistant answer


def load_reward_functions(cfg: Any) -> list[Reward]:
    """The run's reward functions with their weights; every mistake refused here, naming the entry."""
    rewards_cfg = cfg.rewards
    names = rewards_cfg.reward_funcs or []
    weights = rewards_cfg.reward_weights
    if weights is not None and len(weights) != len(names):
        raise LmforgeError(
            f"reward_weights has {len(weights)} values for {len(names)} reward_funcs",
            "give one weight per reward function, in the same order",
        )
    _check_builtin_keys(cfg, names)
    weights = weights or [1.0] * len(names)
    return [
        Reward(name, _build(name, rewards_cfg), float(weight), name in NEEDS_REFERENCE)
        for name, weight in zip(names, weights, strict=True)
    ]


def weighted_sum(
    rewards: Sequence[Reward], prompts: list[str], completions: list[str], references: list[str | None]
) -> list[float]:
    """Sum of ``weight * fn(...)`` per completion (what ppo optimises; grpo lets trl weigh them)."""
    total = [0.0] * len(completions)
    for reward in rewards:
        for i, value in enumerate(reward.fn(prompts, completions, references)):
            total[i] += reward.weight * value
    return total


def _check_builtin_keys(cfg: Any, names: list[str]) -> None:
    """A built-in's own key without the built-in (or the built-in without its key) is a mistake."""
    pattern = cfg.rewards.reward_format_pattern
    if "format" in names and pattern is None:
        raise LmforgeError(
            "reward_funcs: format needs reward_format_pattern", "set reward_format_pattern to a regular expression"
        )
    if pattern is not None and "format" not in names:
        raise LmforgeError("reward_format_pattern is set but reward_funcs has no format", "add format or remove it")
    if cfg.explicitly_set("reward_length_target") and "length" not in names:
        raise LmforgeError("reward_length_target is set but reward_funcs has no length", "add length or remove it")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as err:
            raise LmforgeError(
                f"reward_format_pattern {pattern!r} is not a valid regular expression: {err}",
                "fix the pattern (Python re syntax)",
            ) from None


def _build(name: str, rewards_cfg: Any) -> RewardFn:
    if name == "exact_match":
        return exact_match
    if name == "math":
        return math_reward
    if name == "format":
        return _format_reward(rewards_cfg.reward_format_pattern)
    if name == "length":
        return _length_reward(rewards_cfg.reward_length_target)
    if ":" not in name:
        raise LmforgeError(
            f"reward_funcs: unknown reward function {name!r}",
            f"use one of {', '.join(BUILTINS)}, or your own as module:function or path.py:function",
        )
    return _user_function(name)


# --- built-ins ---------------------------------------------------------------------------------


def _squash(text: str) -> str:
    return " ".join(text.split())


def exact_match(prompts: list[str], completions: list[str], references: list[str | None]) -> list[float]:
    return [
        float(ref is not None and _squash(c) == _squash(ref)) for c, ref in zip(completions, references, strict=True)
    ]


def _format_reward(pattern: str) -> RewardFn:
    compiled = re.compile(pattern, re.DOTALL)

    def format_reward(prompts: list[str], completions: list[str], references: list[str | None]) -> list[float]:
        return [float(compiled.search(c) is not None) for c in completions]

    return format_reward


def _length_reward(target: int) -> RewardFn:
    def length_reward(prompts: list[str], completions: list[str], references: list[str | None]) -> list[float]:
        return [max(0.0, 1.0 - abs(len(c) - target) / target) for c in completions]

    return length_reward


def math_reward(prompts: list[str], completions: list[str], references: list[str | None]) -> list[float]:
    return [float(ref is not None and same_answer(c, ref)) for c, ref in zip(completions, references, strict=True)]


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_FRAC = re.compile(r"\\d?frac\{([^{}]+)\}\{([^{}]+)\}")


def final_answer(text: str) -> str | None:
    """The last ``\\boxed{...}`` (braces matched), else what follows the last ``####``, else the last number."""
    start = text.rfind("\\boxed{")
    if start >= 0:
        depth, i = 1, start + len("\\boxed{")
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i:j].strip()
    if "####" in text:
        tail = text.rsplit("####", 1)[1].strip()
        return tail.splitlines()[0].strip() if tail else None
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def as_rational(answer: str) -> Fraction | None:
    """``1,000`` · ``-0.25`` · ``3/4`` · ``\\frac{3}{4}`` · ``$12`` · ``50%`` (= 1/2) as an exact fraction."""
    text = answer.strip().strip("$").replace("\\$", "").replace(" ", "").rstrip(".")
    text = _FRAC.sub(r"(\1)/(\2)", text).replace("\\left", "").replace("\\right", "")
    percent = text.endswith("%") or text.endswith("\\%")
    text = text.removesuffix("\\%").removesuffix("%")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    match = re.fullmatch(r"\(?(-?[\d.]+)\)?(?:/\(?(-?[\d.]+)\)?)?", text)
    if match is None:
        return None
    try:
        value = Fraction(match.group(1)) / (Fraction(match.group(2)) if match.group(2) else 1)
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def same_answer(completion: str, reference: str) -> bool:
    """Whether the two final answers agree: as rationals when both parse, else as normalised text."""
    mine, theirs = final_answer(completion), final_answer(reference)
    if mine is None or theirs is None:
        return False
    a, b = as_rational(mine), as_rational(theirs)
    if a is not None and b is not None:
        return a == b
    return _squash(mine).strip("$ .").lower() == _squash(theirs).strip("$ .").lower()


# --- the user's own ------------------------------------------------------------------------------


def _user_function(spec: str) -> RewardFn:
    where, _, attribute = spec.rpartition(":")
    if not where or not attribute:
        raise LmforgeError(f"reward_funcs: {spec!r} is not module:function or path.py:function", "name both parts")
    module = _import_file(spec, where) if where.endswith(".py") else _import_module(spec, where)
    fn = getattr(module, attribute, None)
    if fn is None:
        raise LmforgeError(
            f"reward_funcs: {spec}: {where} has no attribute {attribute!r}",
            f"define def {attribute}(completions, prompts=None, references=None) in {where}, or fix the name",
        )
    if not callable(fn):
        raise LmforgeError(f"reward_funcs: {spec}: {attribute} is not a function", "point it at a function")
    return _adapt(spec, fn, _accepted_arguments(spec, fn))


def _import_module(spec: str, name: str) -> Any:
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except Exception as err:  # any failure while importing the user's code is the user's to fix
        raise LmforgeError(
            f"reward_funcs: {spec}: module {name!r} does not import ({type(err).__name__}: {err})",
            "install the module or run from the folder that holds it, or give a path.py:function",
        ) from None
    finally:
        if added:
            sys.path.remove(cwd)


def _import_file(spec: str, where: str) -> Any:
    path = Path(where).expanduser().resolve()
    if not path.is_file():
        raise LmforgeError(
            f"reward_funcs: {spec}: file {where} not found (looked in {Path.cwd()})",
            "give the path relative to the folder you run lmforge in, or an absolute path",
        )
    name = f"lmforge_reward_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        raise LmforgeError(
            f"reward_funcs: {spec}: {where} does not import ({type(err).__name__}: {err})", f"fix {where}"
        ) from None
    return module


def _accepted_arguments(spec: str, fn: Any) -> tuple[str, ...]:
    """Which of prompts/completions/references the function takes; other required arguments are refused."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        raise LmforgeError(
            f"reward_funcs: {spec}: its signature cannot be read", "use a plain Python function"
        ) from None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return ARGUMENTS
    named = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    required = [p.name for p in parameters if p.default is p.empty and p.kind is not p.VAR_POSITIONAL]
    unknown = [name for name in required if name not in ARGUMENTS]
    if unknown or "completions" not in named:
        got = ", ".join(p.name for p in parameters) or "no arguments"
        raise LmforgeError(
            f"reward_funcs: {spec} takes ({got}), but a reward function is called with completions, prompts "
            "and references by name",
            "define it as def f(completions, prompts=None, references=None) or def f(completions, **kwargs), "
            "returning one float per completion",
        )
    return tuple(name for name in ARGUMENTS if name in named)


def _adapt(spec: str, fn: Any, accepted: tuple[str, ...]) -> RewardFn:
    def call(prompts: list[str], completions: list[str], references: list[str | None]) -> list[float]:
        values = {"prompts": prompts, "completions": completions, "references": references}
        result = fn(**{name: values[name] for name in accepted})
        try:
            scores = [float(value) for value in result]
        except (TypeError, ValueError):
            scores = None
        if scores is None or len(scores) != len(completions):
            raise LmforgeError(
                f"reward_funcs: {spec} returned {_describe(result)} for {len(completions)} completions",
                "return a list with one float per completion",
            )
        return scores

    call.__name__ = spec.rpartition(":")[2]
    return call


def _describe(result: Any) -> str:
    if isinstance(result, list | tuple):
        return f"a {type(result).__name__} of {len(result)} items"
    return f"a {type(result).__name__}"
