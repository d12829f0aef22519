"""Formats → canonical records (dataset_info.json mapping, sharegpt tags, OpenAI messages, tools, text),
file types, and the errors a user sees for each kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmforge.data.pipeline import load_records
from lmforge.data.record import make_record, message
from lmforge.errors import LmforgeError

DEMO_DIR = Path(__file__).resolve().parents[2] / "data"


def _records(make_cfg, tmp_path, dataset: str, **keys):
    train, _ = load_records(make_cfg(dataset=dataset, dataset_dir=str(tmp_path), **keys))
    return list(train)


def test_dataset_info_column_mapping_alpaca(make_cfg, write_json, tmp_path):
    write_json(
        tmp_path / "qa.json",
        [
            {"q": "Add", "ctx": "2 and 3", "a": "5", "sys": "Be exact.", "hist": [["Hi", "Hello"]]},
        ],
    )
    write_json(
        tmp_path / "dataset_info.json",
        {
            "qa": {
                "file_name": "qa.json",
                "columns": {"prompt": "q", "query": "ctx", "response": "a", "system": "sys", "history": "hist"},
            }
        },
    )
    assert _records(make_cfg, tmp_path, "qa") == [
        make_record(
            [
                message("user", "Hi"),
                message("assistant", "Hello"),
                message("user", "Add\n2 and 3"),
                message("assistant", "5"),
            ],
            system="Be exact.",
        )
    ]


def test_sharegpt_custom_tags_system_and_tools(make_cfg, write_json, tmp_path):
    tools = [{"name": "add", "parameters": {"type": "object"}}]
    write_json(
        tmp_path / "chat.json",
        [
            {
                "turns": [
                    {"speaker": "sys", "text": "You add."},
                    {"speaker": "me", "text": "1+1?"},
                    {"speaker": "fn", "text": '{"name": "add", "arguments": {"a": 1, "b": 1}}'},
                    {"speaker": "result", "text": "2"},
                    {"speaker": "bot", "text": "It is 2."},
                ],
                "tools": tools,
            }
        ],
    )
    write_json(
        tmp_path / "dataset_info.json",
        {
            "chat": {
                "file_name": "chat.json",
                "formatting": "sharegpt",
                "columns": {"messages": "turns", "tools": "tools"},
                "tags": {
                    "role_tag": "speaker",
                    "content_tag": "text",
                    "user_tag": "me",
                    "assistant_tag": "bot",
                    "observation_tag": "result",
                    "function_tag": "fn",
                    "system_tag": "sys",
                },
            }
        },
    )
    assert _records(make_cfg, tmp_path, "chat") == [
        make_record(
            [
                message("user", "1+1?"),
                message("assistant", "", '[{"name": "add", "arguments": {"a": 1, "b": 1}}]'),
                message("tool", "2"),
                message("assistant", "It is 2."),
            ],
            system="You add.",
            tools=json.dumps(tools),
        )
    ]


def test_openai_messages_file_with_tool_calls(make_cfg, write_jsonl, tmp_path):
    call = {"type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
    write_jsonl(
        tmp_path / "oa.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "S"},
                    {"role": "user", "content": "go"},
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "content": "1"},
                    {"role": "assistant", "content": "done"},
                ]
            }
        ],
    )
    assert _records(make_cfg, tmp_path, str(tmp_path / "oa.jsonl")) == [
        make_record(
            [
                message("user", "go"),
                message("assistant", "", '[{"name": "add", "arguments": {"a": 1}}]'),
                message("tool", "1"),
                message("assistant", "done"),
            ],
            system="S",
        )
    ]


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl"])
def test_file_types_give_the_same_records(make_cfg, tmp_path, suffix):
    rows = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(3)]
    path = tmp_path / f"d.{suffix}"
    if suffix == "csv":
        path.write_text("instruction,input,output\n" + "".join(f"q{i},,a{i}\n" for i in range(3)))
    elif suffix == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = _records(make_cfg, tmp_path, str(path))
    assert [r["messages"][0]["content"] for r in records] == ["q0", "q1", "q2"]
    assert [r["messages"][1]["content"] for r in records] == ["a0", "a1", "a2"]


def test_pretrain_text_from_txt_and_alpaca_prompt_column(make_cfg, write_json, tmp_path):
    (tmp_path / "c.txt").write_text("first line\n\nsecond line\n")
    assert [r["text"] for r in _records(make_cfg, tmp_path, str(tmp_path / "c.txt"), stage="pt")] == [
        "first line",
        "second line",
    ]
    write_json(tmp_path / "c.json", [{"content": "some text"}])
    write_json(tmp_path / "dataset_info.json", {"c": {"file_name": "c.json", "columns": {"prompt": "content"}}})
    assert [r["text"] for r in _records(make_cfg, tmp_path, "c", stage="pt")] == ["some text"]


def test_demo_data_sets_load(make_cfg):
    cfg = make_cfg(dataset="identity,alpaca_demo,sharegpt_demo", dataset_dir=str(DEMO_DIR))
    train, _ = load_records(cfg)
    assert len(train) == 68 + 300 + 50
    identity = [r for r in train if r["messages"][0]["content"] == "What is your name?"]
    assert identity and all("Forge" in r["messages"][1]["content"] for r in identity)


# --- errors ------------------------------------------------------------------------------------
def _error(make_cfg, tmp_path, dataset: str, **keys) -> str:
    with pytest.raises(LmforgeError) as info:
        load_records(make_cfg(dataset=dataset, dataset_dir=str(tmp_path), **keys))
    return str(info.value)


def test_malformed_json_names_file_and_line(make_cfg, tmp_path):
    (tmp_path / "bad.json").write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": "c",, }\n]')
    message_text = _error(make_cfg, tmp_path, str(tmp_path / "bad.json"))
    assert f"{tmp_path / 'bad.json'}:3:" in message_text and "malformed JSON" in message_text


def test_malformed_jsonl_names_the_line(make_cfg, tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"text": "ok"}\n{"text": broken}\n')
    assert f"{tmp_path / 'bad.jsonl'}:3:" in _error(make_cfg, tmp_path, str(tmp_path / "bad.jsonl"), stage="pt")


def test_missing_column_names_column_and_file(make_cfg, write_json, tmp_path):
    write_json(tmp_path / "d.json", [{"question": "q", "output": "a"}])
    write_json(tmp_path / "dataset_info.json", {"d": {"file_name": "d.json", "columns": {"prompt": "prompt_text"}}})
    message_text = _error(make_cfg, tmp_path, "d")
    assert "missing column 'prompt_text'" in message_text and str(tmp_path / "d.json") in message_text


def test_unknown_dataset_name_lists_known_names(make_cfg, write_json, tmp_path):
    write_json(tmp_path / "x.json", [])
    write_json(tmp_path / "dataset_info.json", {"alpha": {"file_name": "x.json"}, "beta": {"file_name": "x.json"}})
    message_text = _error(make_cfg, tmp_path, "gamma")
    assert "dataset 'gamma' is not in" in message_text and "(known: alpha, beta)" in message_text


def test_hub_entries_are_refused_clearly(make_cfg, write_json, tmp_path):
    write_json(tmp_path / "dataset_info.json", {"h": {"hf_hub_url": "org/data"}})
    assert "reads local files only" in _error(make_cfg, tmp_path, "h")


def test_empty_after_filtering_says_how_many_and_why(make_cfg, write_json, tmp_path):
    write_json(
        tmp_path / "e.json",
        [
            {"conversations": [{"from": "human", "value": "hi"}]},
            {"conversations": [{"from": "human", "value": "hi"}]},
            {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": " "}]},
        ],
    )
    message_text = _error(make_cfg, tmp_path, str(tmp_path / "e.json"))
    path = tmp_path / "e.json"
    assert (
        f"has no usable records: 3 dropped (2 no assistant turn [{path} records 0, 1], "
        f"1 empty response [{path} record 2])" in message_text
    )


def test_invalid_role_names_role_and_record_when_nothing_is_left(make_cfg, write_json, tmp_path):
    write_json(
        tmp_path / "r.json",
        [{"conversations": [{"from": "human", "value": "hi"}, {"from": "robot", "value": "yo"}]}],
    )
    message_text = _error(make_cfg, tmp_path, str(tmp_path / "r.json"))
    assert "1 dropped (1 invalid role 'robot'" in message_text and f"[{tmp_path / 'r.json'} record 0]" in message_text
