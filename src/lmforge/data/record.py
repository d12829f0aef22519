"""The canonical record every data format converts to, and the checks a conversation must pass.

A record is a plain dict so `datasets` can store it in Arrow; ``FEATURES`` fixes its schema so data
sets from different formats (one with system prompts, one without) concatenate without type clashes.
"""

from __future__ import annotations

from typing import Any

from datasets import Features, List, Value

ROLES = ("user", "assistant", "tool")
MESSAGE = {"role": Value("string"), "content": Value("string"), "tool_calls": Value("string")}
FEATURES = Features(
    {
        "messages": List(MESSAGE),
        "system": Value("string"),
        "tools": Value("string"),
        "chosen": MESSAGE,
        "rejected": MESSAGE,
        "kto_label": Value("bool"),
        "text": Value("string"),
    }
)


def message(role: str, content: str, tool_calls: str | None = None) -> dict[str, Any]:
    return {"role": role, "content": content, "tool_calls": tool_calls}


def make_record(
    messages: list[dict[str, Any]] | None = None,
    *,
    system: str | None = None,
    tools: str | None = None,
    chosen: dict[str, Any] | None = None,
    rejected: dict[str, Any] | None = None,
    kto_label: bool | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """A record with every key present (Arrow needs the same keys on every row)."""
    return {
        "messages": messages or [],
        "system": system or None,
        "tools": tools or None,
        "chosen": chosen,
        "rejected": rejected,
        "kto_label": kto_label,
        "text": text,
    }


def drop_reason(record: dict[str, Any], *, needs_response: bool = True) -> str | None:
    """Why a conversation cannot be trained on (None when it can); the reasons are counted and reported.

    Order rules: turns start with a user message, a user turn is followed by an assistant turn, a tool
    result follows an assistant turn that made tool calls, and (for training) the last turn is the
    assistant's.
    """
    messages = record["messages"]
    if not messages:
        return "no messages"
    if messages[0]["role"] != "user":
        return f"first turn is {messages[0]['role']}, not user"
    previous = None
    for msg in messages:
        role = msg["role"]
        if role == "user" and previous not in (None, "assistant"):
            return "turns out of order"
        if role == "assistant" and previous not in ("user", "tool"):
            return "turns out of order"
        if role == "tool" and previous not in ("assistant", "tool"):
            return "turns out of order"
        if role != "assistant" and not (msg["content"] or "").strip():
            return f"empty {role} message"
        previous = role
    if not needs_response:
        return None
    if not any(m["role"] == "assistant" for m in messages):
        return "no assistant turn"
    if messages[-1]["role"] != "assistant":
        return "last turn is not the assistant's"
    for msg in messages:
        if msg["role"] == "assistant" and not (msg["content"] or "").strip() and not msg["tool_calls"]:
            return "empty response"
    return None


def record_text(record: dict[str, Any]) -> str:
    """The raw text of a record for stage pt: its ``text``, else its message contents joined."""
    if record.get("text"):
        return record["text"]
    return "\n".join(m["content"] for m in record["messages"] if m["content"])
