"""Every config field is read somewhere in src/ (the consumer map), and keys that would be silently
ignored together are refused in the config, before anything runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from lmforge.config import build_config
from lmforge.config.consumers import CHECKED_ONLY
from lmforge.config.schema import GROUPS, KEY_TO_GROUP
from lmforge.errors import LmforgeError

SRC = Path(__file__).resolve().parents[2] / "src" / "lmforge"


def consumers() -> dict[str, list[str]]:
    """Each config key → the modules outside config/ that read it (``.key`` or ``"key"``)."""
    sources = {
        str(path.relative_to(SRC)): path.read_text(encoding="utf-8")
        for path in SRC.rglob("*.py")
        if "config" not in path.relative_to(SRC).parts[:1]
    }
    return {
        key: [name for name, text in sources.items() if re.search(rf"\.{key}\b|[\"']{key}[\"']", text)]
        for key in KEY_TO_GROUP
    }


def test_every_config_field_has_a_consumer_or_a_reason() -> None:
    unread = sorted(key for key, modules in consumers().items() if not modules and key not in CHECKED_ONLY)
    assert unread == [], f"fields nothing in src/ reads (wire them, or refuse them with a reason): {unread}"
    assert set(CHECKED_ONLY) <= set(KEY_TO_GROUP), "CHECKED_ONLY names a field that no longer exists"


def test_messages_name_flat_keys_not_groups() -> None:
    """Users write ``template:``, so no message may say ``data.template``."""
    grouped = re.compile(rf"\b({'|'.join(GROUPS)})\.({'|'.join(KEY_TO_GROUP)})\b")
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(node, "func", None)
            if not isinstance(node, ast.Call) or getattr(name, "id", getattr(name, "attr", "")) != "LmforgeError":
                continue
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                for part in ast.walk(arg):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str) and grouped.search(part.value):
                        found.append(f"{path.relative_to(SRC)}:{part.lineno}: {part.value}")
    assert found == []


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ({"mask_history": True, "train_on_prompt": True}, "mask_history and train_on_prompt cannot be combined"),
        (
            {"dataset": "a,b", "mix_strategy": "interleave_under", "interleave_probs": "0.5,0.3"},
            r"interleave_probs \[0.5, 0.3\] must be non-negative and sum to 1 \(they sum to 0.8\)",
        ),
        (
            {"dataset": "a,b", "mix_strategy": "interleave_over", "interleave_probs": "1.2,-0.2"},
            "must be non-negative and sum to 1",
        ),
        (
            {"dataset": "a,b", "mix_strategy": "interleave_over", "interleave_probs": "0.2,0.3,0.5"},
            "interleave_probs has 3 values for 2 data sets",
        ),
        (
            {"dataset": "a", "mix_strategy": "interleave_under", "interleave_probs": 1.0},
            r"interleave_probs needs two or more data sets to mix \(dataset has 1\)",
        ),
        ({"dataset": "a", "do_eval": True}, "do_eval: true has no evaluation data"),
        ({"dataset": "a", "buffer_size": 128}, "buffer_size shuffles streamed data only, and streaming is off"),
    ],
)
def test_keys_that_would_be_ignored_together_are_refused(flat: dict, message: str) -> None:
    with pytest.raises(LmforgeError, match=message):
        build_config(flat)


def test_the_same_keys_are_accepted_where_they_mean_something() -> None:
    cfg = build_config(
        {
            "dataset": "a,b",
            "mix_strategy": "interleave_under",
            "interleave_probs": "0.7,0.3",
            "do_eval": True,
            "val_size": 0.1,
        }
    )
    assert cfg.data.interleave_probs == [0.7, 0.3]
    streamed = build_config({"dataset": "a", "streaming": True, "buffer_size": 128, "max_steps": 5})
    assert streamed.data.buffer_size == 128


def test_buffer_size_at_its_default_is_not_refused() -> None:
    """A run_config.yaml given back as a config spells every default: those change nothing."""
    assert build_config({"dataset": "a", "buffer_size": 16384}).data.buffer_size == 16384
