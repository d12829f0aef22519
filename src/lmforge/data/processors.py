"""Where a token's label is decided: canonical records → ``input_ids`` and ``labels`` (-100 = not trained).

Supervised (sft): the template renders one ``(prompt_ids, response_ids)`` pair per assistant turn;
responses are trained, prompts masked unless ``train_on_prompt``; ``mask_history`` trains only the last
turn. Truncation to ``cutoff_len`` gives each turn a budget split between prompt and response in
proportion to their lengths, so a long prompt cannot crowd out the response (LLaMA-Factory's rule).

Pretraining (pt): each text plus EOS; texts longer than ``cutoff_len`` are cut into chunks so no
token is lost. Packing the chunks together is packing.py's job.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100


def split_budget(source_len: int, target_len: int, budget: int) -> tuple[int, int]:
    """How many prompt and response tokens of one turn fit in ``budget`` tokens.

    A short response keeps all its tokens; a short prompt keeps all of its tokens; when both are long
    each keeps a share proportional to its length.
    """
    if 2 * target_len < budget:
        target_cap = budget
    elif 2 * source_len < budget:
        target_cap = budget - source_len
    else:
        target_cap = int(budget * target_len / (source_len + target_len))
    new_target = min(target_cap, target_len)
    new_source = min(max(budget - new_target, 0), source_len)
    return new_source, new_target


def encode_supervised(
    pairs: list[tuple[list[int], list[int]]],
    cutoff_len: int,
    *,
    train_on_prompt: bool = False,
    mask_history: bool = False,
) -> tuple[list[int], list[int]]:
    """Concatenate the turns of one conversation into ``(input_ids, labels)`` within ``cutoff_len``.

    With ``mask_history`` the last turn gets the budget first (turns are visited newest first), so
    truncation removes old history rather than the one trained answer.
    """
    order = list(reversed(pairs)) if mask_history else list(pairs)
    pieces: list[tuple[list[int], list[int]]] = []
    used = 0
    for i, (source, target) in enumerate(order):
        if used >= cutoff_len:
            break
        source_len, target_len = split_budget(len(source), len(target), cutoff_len - used)
        source, target = source[:source_len], target[:target_len]
        used += source_len + target_len
        trained = not mask_history or i == 0  # reversed: i == 0 is the last turn
        source_labels = source if train_on_prompt and trained else [IGNORE_INDEX] * source_len
        target_labels = target if trained else [IGNORE_INDEX] * target_len
        pieces.append((source + target, source_labels + target_labels))
    if mask_history:
        pieces.reverse()
    input_ids = [token for ids, _ in pieces for token in ids]
    labels = [label for _, labs in pieces for label in labs]
    return input_ids, labels


def supervised_batch(
    batch: dict[str, list[Any]],
    *,
    tokenizer: Any,
    template: Any,
    cutoff_len: int,
    train_on_prompt: bool,
    mask_history: bool,
    default_system: str | None,
) -> dict[str, list[Any]]:
    """Batched `datasets.map` function for stage sft; also records the untruncated length for stats."""
    out: dict[str, list[Any]] = {"input_ids": [], "labels": [], "full_length": []}
    conversations = [
        (messages, system or default_system, tools)
        for messages, system, tools in zip(batch["messages"], batch["system"], batch["tools"], strict=True)
    ]
    for pairs in template.encode_turns_batch(tokenizer, conversations):
        input_ids, labels = encode_supervised(
            pairs, cutoff_len, train_on_prompt=train_on_prompt, mask_history=mask_history
        )
        out["input_ids"].append(input_ids)
        out["labels"].append(labels)
        out["full_length"].append(sum(len(s) + len(t) for s, t in pairs))
    return out


def pretrain_batch(batch: dict[str, list[Any]], *, tokenizer: Any, cutoff_len: int) -> dict[str, list[Any]]:
    """Batched `datasets.map` function for stage pt: text + EOS, chunked to ``cutoff_len``."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    encoded = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
    out: dict[str, list[Any]] = {"input_ids": [], "labels": [], "full_length": []}
    for ids in encoded:
        ids = ids + eos
        for start in range(0, len(ids), cutoff_len):
            chunk = ids[start : start + cutoff_len]
            out["input_ids"].append(chunk)
            out["labels"].append(list(chunk))
            out["full_length"].append(len(chunk))
    return out
