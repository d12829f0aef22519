"""Where the tokens of preference data are decided: pairs (rm, dpo) and feedback (kto).

Both render with the same template as SFT (``Template.encode_turns``): the prompt is everything up
to the last assistant header (history turns included, never trained), the answer is the assistant
text plus the end-of-turn tokens, the only trained positions.

Truncation to ``cutoff_len`` (LLaMA-Factory's rule): the prompt and the *longer* of the two answers
share the budget as in SFT (processors.split_budget), and both answers are cut to the same length,
so chosen and rejected keep the same prompt.
"""

from __future__ import annotations

from typing import Any

from lmforge.data.processors import IGNORE_INDEX, split_budget

Pairs = list[tuple[list[int], list[int]]]


def split_last_answer(pairs: Pairs) -> tuple[list[int], list[int]]:
    """(prompt, answer): the whole conversation before the last response, and that response."""
    prompt = [token for source, target in pairs[:-1] for token in source + target] + pairs[-1][0]
    return prompt, pairs[-1][1]


def _row(prompt: list[int], answer: list[int]) -> tuple[list[int], list[int]]:
    return prompt + answer, [IGNORE_INDEX] * len(prompt) + list(answer)


def pairwise_batch(
    batch: dict[str, list[Any]], *, tokenizer: Any, template: Any, cutoff_len: int, default_system: str | None
) -> dict[str, list[Any]]:
    """Batched `datasets.map` function for rm and dpo: ``chosen_*`` and ``rejected_*`` rows."""
    conversations = []
    rows = zip(batch["messages"], batch["system"], batch["tools"], batch["chosen"], batch["rejected"], strict=True)
    for messages, system, tools, chosen, rejected in rows:
        conversations.append(([*messages, chosen], system or default_system, tools))
        conversations.append(([*messages, rejected], system or default_system, tools))
    encoded = template.encode_turns_batch(tokenizer, conversations)
    out: dict[str, list[Any]] = {
        "chosen_input_ids": [], "chosen_labels": [], "rejected_input_ids": [], "rejected_labels": [],
        "full_length": [],
    }  # fmt: skip
    for chosen_pairs, rejected_pairs in zip(encoded[0::2], encoded[1::2], strict=True):
        prompt, chosen = split_last_answer(chosen_pairs)
        rejected_prompt, rejected = split_last_answer(rejected_pairs)
        prompt_len, answer_len = split_budget(len(prompt), max(len(chosen), len(rejected)), cutoff_len)
        for side, side_prompt, answer in (("chosen", prompt, chosen), ("rejected", rejected_prompt, rejected)):
            ids, labels = _row(side_prompt[:prompt_len], answer[:answer_len])
            out[f"{side}_input_ids"].append(ids)
            out[f"{side}_labels"].append(labels)
        out["full_length"].append(len(prompt) + max(len(chosen), len(rejected)))
    return out


def feedback_batch(
    batch: dict[str, list[Any]], *, tokenizer: Any, template: Any, cutoff_len: int, default_system: str | None
) -> dict[str, list[Any]]:
    """Batched `datasets.map` function for kto: the answer with its label, and a mismatched row.

    The mismatched row (``kl_*``: this prompt with the answer of another record, the batch read in
    reverse, as LLaMA-Factory pairs them) feeds KTO's estimate of the policy/reference KL.
    """
    conversations = [
        (messages, system or default_system, tools)
        for messages, system, tools in zip(batch["messages"], batch["system"], batch["tools"], strict=True)
    ]
    split = [split_last_answer(pairs) for pairs in template.encode_turns_batch(tokenizer, conversations)]
    answers = [answer for _, answer in split]
    out: dict[str, list[Any]] = {
        "input_ids": [], "labels": [], "kl_input_ids": [], "kl_labels": [], "kto_label": [], "full_length": [],
    }  # fmt: skip
    for (prompt, answer), other, label in zip(split, reversed(answers), batch["kto_label"], strict=True):
        for prefix, target in (("", answer), ("kl_", other)):
            prompt_len, answer_len = split_budget(len(prompt), len(target), cutoff_len)
            ids, labels = _row(prompt[:prompt_len], target[:answer_len])
            out[f"{prefix}input_ids"].append(ids)
            out[f"{prefix}labels"].append(labels)
        out["kto_label"].append(bool(label))
        out["full_length"].append(len(prompt) + len(answer))
    return out
