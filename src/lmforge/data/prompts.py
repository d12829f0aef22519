"""Prompt rows for the stages that generate their answers (grpo; ppo can share them).

A record's prompt is everything before its last assistant turn, rendered with the run's template up
to the assistant header (``Template.encode_prompt``: the ids generation starts from, exactly those
of training and serving); that last answer, when there is one, is the row's ``reference``
(exact-match and math rewards). Prompt-only records (no answer) keep ``reference`` None.

Columns: ``prompt`` (the prompt ids decoded back to text, which is what trl's GRPOTrainer takes),
``prompt_ids``, ``reference``. A prompt longer than ``cutoff_len`` is dropped (counted as a row
without trained tokens), never cut: a truncated question asks something else.
"""

from __future__ import annotations

from typing import Any


def split_prompt(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """(the messages before the last assistant turn, that turn's text or None)."""
    if messages and messages[-1]["role"] == "assistant":
        answer = messages[-1]
        text = answer["content"] or answer.get("tool_calls") or ""
        return messages[:-1], text or None
    return messages, None


def prompt_batch(
    batch: dict[str, list[Any]], *, tokenizer: Any, template: Any, cutoff_len: int, default_system: str | None
) -> dict[str, list[Any]]:
    """Batched ``datasets.map`` function: prompt text and ids, and the reference answer."""
    out: dict[str, list[Any]] = {"prompt": [], "prompt_ids": [], "reference": [], "full_length": []}
    for messages, system, tools in zip(batch["messages"], batch["system"], batch["tools"], strict=True):
        prompt, reference = split_prompt(messages)
        ids = template.encode_prompt(tokenizer, prompt, system=system or default_system, tools=tools or None)
        kept = ids if len(ids) <= cutoff_len else []
        out["prompt"].append(tokenizer.decode(kept, skip_special_tokens=False, clean_up_tokenization_spaces=False))
        out["prompt_ids"].append(kept)
        out["reference"].append(reference)
        out["full_length"].append(len(ids))
    return out
