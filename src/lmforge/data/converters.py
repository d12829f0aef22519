"""Raw rows of each format (alpaca, sharegpt, OpenAI messages, text) → canonical records.

``convert_row`` returns ``(record, None)`` or ``(None, reason)``: conversations that cannot be
trained on are dropped and their reasons counted for the report; mistakes in the file itself
(unknown roles, a missing column) raise ``LmforgeError`` naming the file, record and field.
"""

from __future__ import annotations

import json
from typing import Any

from lmforge.data.record import drop_reason, make_record, message, record_text
from lmforge.data.registry import OPENAI_TAGS, DatasetAttr
from lmforge.data.tool_calls import ToolCallError, tool_calls_text
from lmforge.errors import LmforgeError

Converted = tuple[dict[str, Any] | None, str | None]


def detect_formatting(columns: set[str], attr: DatasetAttr) -> str:
    """The formatting of a file given by path, from its column names."""
    if "conversations" in columns:
        return "sharegpt"
    if "messages" in columns:
        return "openai"
    if "instruction" in columns:
        return "alpaca"
    if "text" in columns:
        return "text"
    raise LmforgeError(
        f"{attr.path}: cannot tell the data format from its columns {sorted(columns)}",
        "use alpaca (instruction/input/output), sharegpt (conversations), OpenAI (messages) or text "
        "columns, or describe the file in dataset_info.json",
    )


def check_columns(attr: DatasetAttr, columns: set[str], stage: str) -> None:
    """A missing column is named with its file, before any row is converted."""
    required = set(attr.explicit_columns)
    if attr.formatting in ("alpaca", "text"):
        required.add("prompt")
        if attr.formatting == "alpaca" and stage != "pt" and (attr.ranking or stage not in PROMPT_STAGES):
            required |= {"chosen", "rejected"} if attr.ranking else {"response"}
    else:
        required.add("messages")
    for key in sorted(required):
        name = attr.column(key)
        if name and name not in columns:
            raise LmforgeError(
                f"{attr.path}: missing column {name!r} (the {key} column of {attr.formatting} data set "
                f"{attr.name!r}); columns found: {sorted(columns)}",
                f"rename the column, or map it with columns: {{{key}: ...}} in dataset_info.json",
            )


PAIR_STAGES = ("rm", "dpo")  # the stages that train on chosen/rejected pairs
# The stages that generate their own answers: a record needs only a prompt (everything before the
# last assistant turn); that answer, when present, is the reference (exact-match rewards).
PROMPT_STAGES = ("ppo", "grpo")


def check_stage_takes(attr: DatasetAttr, stage: str) -> None:
    """Pairwise data holds no single answer to imitate: name the stages that take it, not a render error."""
    if attr.ranking and stage not in (*PAIR_STAGES, "pt"):
        raise LmforgeError(
            f"data set {attr.name!r} ({attr.path}) is pairwise preference data (chosen/rejected), "
            f"which stage {stage} cannot train on: pairs train stage {' or '.join(PAIR_STAGES)}",
            f"set stage: {PAIR_STAGES[1]} (or {PAIR_STAGES[0]}), or use data with one assistant answer per "
            f"conversation for stage {stage}",
        )


class RecordDropped(Exception):
    """One record that cannot be trained on (an odd turn, a malformed tool call): dropped and counted.

    Mistakes that concern the whole file (a missing column, a wrong ``tags`` key) still raise
    ``LmforgeError``; one bad record among thousands must not abort the data set.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def convert_row(row: dict[str, Any], attr: DatasetAttr, index: int, stage: str) -> Converted:
    """One raw row → a canonical record for ``stage`` (pt records carry only ``text``)."""
    where = f"{attr.path}: record {index}"
    try:
        return _convert_row(row, attr, where, stage)
    except RecordDropped as drop:
        return None, drop.reason


def _convert_row(row: dict[str, Any], attr: DatasetAttr, where: str, stage: str) -> Converted:
    if attr.formatting == "text":
        record = make_record(text=_text(row.get(attr.column("prompt") or "text")))
    elif attr.formatting == "alpaca":
        record = _alpaca(row, attr)
    else:
        record = _sharegpt(row, attr, where)
    if stage == "pt":
        text = record_text(record)
        return (make_record(text=text), None) if text.strip() else (None, "empty text")
    if record["text"] is not None and not record["messages"]:
        return None, "text only (stage sft needs conversations)"
    if stage == "kto" and record["kto_label"] is None:
        return None, "no kto_tag value"
    needs_response = record["chosen"] is None and stage not in PROMPT_STAGES  # kto: the answer is the last turn
    reason = drop_reason(record, needs_response=needs_response)
    if reason is None and record["chosen"] is not None:
        reason = next((f"empty {side} answer" for side in ("chosen", "rejected") if not _answered(record[side])), None)
    return (None, reason) if reason else (record, None)


def _answered(answer: dict[str, Any]) -> bool:
    return bool((answer["content"] or "").strip() or answer["tool_calls"])


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _alpaca(row: dict[str, Any], attr: DatasetAttr) -> dict[str, Any]:
    messages = []
    for pair in _get(row, attr, "history") or []:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise LmforgeError(f"{attr.path}: history entries must be [query, response] pairs, got {pair!r}")
        messages += [message("user", _text(pair[0])), message("assistant", _text(pair[1]))]
    prompt = _text(_get(row, attr, "prompt"))
    query = _text(_get(row, attr, "query"))
    messages.append(message("user", f"{prompt}\n{query}" if prompt and query else prompt or query))
    chosen = rejected = None
    if attr.ranking:
        chosen = message("assistant", _text(_get(row, attr, "chosen")))
        rejected = message("assistant", _text(_get(row, attr, "rejected")))
    else:
        response = _get(row, attr, "response")
        if isinstance(response, list) and response:  # LLaMA-Factory's KTO rows keep a list
            response = response[0]
        if response is not None:
            messages.append(message("assistant", _text(response)))
    return make_record(
        messages,
        system=_text(_get(row, attr, "system")),
        tools=_tools(_get(row, attr, "tools")),
        chosen=chosen,
        rejected=rejected,
        kto_label=_kto_label(row, attr),
    )


def _sharegpt(row: dict[str, Any], attr: DatasetAttr, where: str) -> dict[str, Any]:
    field = attr.column("messages") or "conversations"
    turns = row.get(field) or []
    if not isinstance(turns, list):
        raise LmforgeError(f"{where}: field {field!r} must be a list of messages, got {type(turns).__name__}")
    tags = _tags_for(turns, attr)
    system = _text(_get(row, attr, "system"))
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or tags["role_tag"] not in turn:
            raise LmforgeError(
                f"{where}: field {field!r} message {i} has no {tags['role_tag']!r} key",
                "map the key names with tags: {role_tag: ..., content_tag: ...} in dataset_info.json",
            )
        role = turn[tags["role_tag"]]
        if role == tags["system_tag"]:
            if i:
                raise RecordDropped(f"system turn mid-conversation (message {i})")
            system = system or _text(turn.get(tags["content_tag"]))
            continue
        messages.append(_turn(turn, role, tags))
    chosen = rejected = None
    if attr.ranking:
        chosen = _turn(_get(row, attr, "chosen") or {}, tags["assistant_tag"], tags)
        rejected = _turn(_get(row, attr, "rejected") or {}, tags["assistant_tag"], tags)
    return make_record(
        messages,
        system=system,
        tools=_tools(_get(row, attr, "tools")),
        chosen=chosen,
        rejected=rejected,
        kto_label=_kto_label(row, attr),
    )


def _tags_for(turns: list[Any], attr: DatasetAttr) -> dict[str, str]:
    """OpenAI-style messages (role/content) are accepted in a sharegpt entry whose tags do not match."""
    first = turns[0] if turns and isinstance(turns[0], dict) else {}
    if attr.tags["role_tag"] not in first and "role" in first:
        return OPENAI_TAGS
    return attr.tags


def _turn(turn: dict[str, Any], role: Any, tags: dict[str, str]) -> dict[str, Any]:
    content = _text(turn.get(tags["content_tag"]))
    if role == tags["user_tag"]:
        return message("user", content)
    if role == tags["assistant_tag"]:
        calls = turn.get("tool_calls")
        return message("assistant", content, _tool_calls(calls) if calls else None)
    if role == tags["observation_tag"]:
        return message("tool", content)
    if role == tags["function_tag"]:
        return message("assistant", "", _tool_calls(content))
    known = [tags[key] for key in ("user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")]
    raise RecordDropped(f"invalid role {role!r} (expected one of {', '.join(map(repr, known))}; map others with tags)")


def _tools(value: Any) -> str:
    """The tool schemas as JSON text; text that is not a JSON list/object drops the record (not a traceback later)."""
    text = _text(value)
    if text.strip():
        try:
            schemas = json.loads(text)
        except json.JSONDecodeError:
            raise RecordDropped("tools is not valid JSON") from None
        if not isinstance(schemas, (list, dict)):
            raise RecordDropped("tools is not a JSON list of tool schemas")
    return text


def _tool_calls(calls: Any) -> str | None:
    """Any tool-call spelling → the record's JSON text; a malformed call drops the record."""
    try:
        return tool_calls_text(calls)
    except ToolCallError as err:
        raise RecordDropped(err.reason) from None


def _get(row: dict[str, Any], attr: DatasetAttr, key: str) -> Any:
    name = attr.column(key)
    return row.get(name) if name else None


def _kto_label(row: dict[str, Any], attr: DatasetAttr) -> bool | None:
    value = _get(row, attr, "kto_tag")
    return None if value is None else bool(value)
