"""LLaMA-Factory keys that are not ours: each is an alias, allowed at a neutral value, or refused.

A LLaMA-Factory YAML carries keys by habit (``disable_gradient_checkpointing``, ``use_unsloth:
false``, ``pref_beta``). "Unknown key" would block a user who did nothing wrong, and accepting them
silently would train something other than asked, so every such key has a rule in
llamafactory_keys.yaml: an alias of an lmforge key (with a value mapping where the meaning is
inverted), values that match what lmforge does anyway, or a refusal that says why and what to use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lmforge.config.method import IMPLEMENTED_STAGES
from lmforge.errors import LmforgeError

TABLE_FILE = Path(__file__).with_name("llamafactory_keys.yaml")


@dataclass(frozen=True)
class KeyRule:
    """What one LLaMA-Factory key becomes; exactly one of alias, refuse, stages is set."""

    alias: str | None = None
    values: dict[Any, Any] | None = None
    accept: tuple[Any, ...] = ()
    refuse: str | None = None
    stages: tuple[str, ...] = field(default_factory=tuple)


@cache
def rules() -> Mapping[str, KeyRule]:
    """The table, read once; read-only, since every run shares it."""
    table = yaml.safe_load(TABLE_FILE.read_text(encoding="utf-8"))
    return MappingProxyType(
        {
            key: KeyRule(
                alias=entry.get("alias"),
                values=entry.get("values"),
                accept=tuple(entry.get("accept", ())),
                refuse=entry.get("refuse"),
                stages=tuple(entry.get("stages", ())),
            )
            for key, entry in table.items()
        }
    )


def _same(value: Any, neutral: Any) -> bool:
    # 1e-6 from a YAML file may arrive as a string (YAML 1.1 needs a dot), true must not equal 1.
    if isinstance(value, bool) or isinstance(neutral, bool) or value is None or neutral is None:
        return value is neutral
    try:
        return float(value) == float(neutral)
    except (TypeError, ValueError):
        return str(value) == str(neutral)


def translate(key: str, value: Any, origin: str) -> tuple[str, Any] | None:
    """``(lmforge_key, value)`` for an alias, None for a neutral value; anything else raises."""
    rule = rules()[key]
    if rule.alias is not None:
        if rule.values is None:
            return rule.alias, value
        for theirs, ours in rule.values.items():
            if _same(value, theirs):
                return rule.alias, ours
        choices = " or ".join(show(v) for v in rule.values)
        raise LmforgeError(f"{origin}: key {key!r} has invalid value {value!r}", f"use {choices}")
    if rule.stages:
        stages = " / ".join(rule.stages)
        raise LmforgeError(
            f"{origin}: {key} belongs to stage {stages}, which is not implemented yet",
            f"lmforge trains stages {', '.join(IMPLEMENTED_STAGES)}; remove {key}",
        )
    if any(_same(value, neutral) for neutral in rule.accept):
        return None
    raise LmforgeError(f"{origin}: {key}: {show(value)} cannot be honoured: {rule.refuse}", f"remove {key}")


def show(value: Any) -> str:
    """A value as the user wrote it in YAML (true, null), not as Python prints it."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)
