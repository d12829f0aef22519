"""Issue 14 (data): nothing a file says is lost, one odd record never aborts a data set, and each
refusal names the culprit: alpaca system/history from a file path, odd sharegpt turns dropped and
counted by record, dataset_dir mistakes, pairwise data on sft, streaming shuffle and cache line,
dataset_info.json ``split``."""

from __future__ import annotations

import pytest
from datasets import Dataset, DatasetDict

from lmforge.data.pipeline import build_datasets, load_records, read_all
from lmforge.data.record import make_record, message
from lmforge.errors import LmforgeError


def test_alpaca_file_path_keeps_system_and_history(make_cfg, write_json, tmp_path):
    row = {"instruction": "And 3+3?", "input": "", "output": "6", "system": "Be terse.", "history": [["2+2?", "4"]]}
    write_json(tmp_path / "a.json", [row])
    train, _ = load_records(make_cfg(dataset=str(tmp_path / "a.json"), dataset_dir=str(tmp_path)))
    assert list(train) == [
        make_record(
            [
                message("user", "2+2?"),
                message("assistant", "4"),
                message("user", "And 3+3?"),
                message("assistant", "6"),
            ],
            system="Be terse.",
        )
    ]


def test_odd_sharegpt_turns_are_dropped_and_counted_by_record(make_cfg, write_json, tmp_path):
    good = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    mid_system = {"conversations": [*good["conversations"], {"from": "system", "value": "late"}]}
    robot = {"conversations": [{"from": "human", "value": "hi"}, {"from": "robot", "value": "yo"}]}
    write_json(tmp_path / "s.json", [good, mid_system, robot, good, robot])
    path = str(tmp_path / "s.json")
    records = read_all(make_cfg(dataset=path, dataset_dir=str(tmp_path)))
    assert len(records.train) == 2
    assert dict(records.dropped) == {
        f"system turn mid-conversation (message 2) [{path} record 1]": 1,
        "invalid role 'robot' (expected one of 'human', 'gpt', 'observation', 'function_call', 'system'; "
        f"map others with tags) [{path} records 2, 4]": 2,
    }


@pytest.mark.parametrize("folder", ["elsewhere", "empty"])
def test_dataset_dir_without_dataset_info_names_the_file_and_folder(make_cfg, tmp_path, monkeypatch, folder):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LmforgeError) as info:
        load_records(make_cfg(dataset="alpaca_demo", dataset_dir=folder))
    text = str(info.value)
    assert f"dataset 'alpaca_demo' is not in {tmp_path / folder / 'dataset_info.json'}: " in text
    assert f"dataset_dir {folder!r} is relative to the working directory {tmp_path}" in text
    assert ("no such file" in text) == (folder == "empty")
    assert (f"the folder {tmp_path / folder} does not exist" in text) == (folder == "elsewhere")
    assert "known: none" not in text


def test_pairwise_data_on_sft_names_the_stages_that_take_pairs(make_cfg, write_json, tmp_path):
    write_json(tmp_path / "p.json", [{"instruction": "Hi", "chosen": "Hello!", "rejected": "Go away."}])
    with pytest.raises(LmforgeError) as info:
        load_records(make_cfg(dataset=str(tmp_path / "p.json"), dataset_dir=str(tmp_path)))
    assert "is pairwise preference data (chosen/rejected), which stage sft cannot train on" in str(info.value)
    assert "set stage: dpo (or rm)" in info.value.hint


def _streamed_order(make_cfg, tmp_path, **keys) -> list[str]:
    cfg = make_cfg(dataset=str(tmp_path / "d.jsonl"), dataset_dir=str(tmp_path), streaming=True, max_steps=1, **keys)
    train, _ = load_records(cfg)
    return [r["messages"][0]["content"] for r in train]


def test_buffer_size_shuffles_a_stream_deterministically_by_seed(make_cfg, write_jsonl, tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"instruction": f"q{i}", "output": "a"} for i in range(40)])
    first = _streamed_order(make_cfg, tmp_path, buffer_size=16, seed=1)
    assert sorted(first, key=lambda q: int(q[1:])) == [f"q{i}" for i in range(40)]
    assert first != [f"q{i}" for i in range(40)]
    assert _streamed_order(make_cfg, tmp_path, buffer_size=16, seed=1) == first
    assert _streamed_order(make_cfg, tmp_path, buffer_size=16, seed=2) != first
    assert _streamed_order(make_cfg, tmp_path, buffer_size=1, seed=1) == [f"q{i}" for i in range(40)]


def test_streaming_report_says_not_cached(tokenizer, chatml, make_cfg, write_jsonl, data_home, tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"instruction": "q", "output": "a"}])
    cfg = make_cfg(dataset=str(tmp_path / "d.jsonl"), dataset_dir=str(tmp_path), streaming=True, max_steps=1)
    lines = build_datasets(cfg, tokenizer, chatml).report.lines()
    assert lines[-1] == "cache: none (streamed data is tokenized as it is read, never cached)"


def test_split_of_a_saved_dataset_dict_is_honoured(make_cfg, write_json, tmp_path):
    rows = {name: [{"instruction": f"{name} {i}", "output": "a"} for i in range(2)] for name in ("train", "test")}
    DatasetDict({k: Dataset.from_list(v) for k, v in rows.items()}).save_to_disk(str(tmp_path / "saved"))
    write_json(
        tmp_path / "dataset_info.json",
        {"t": {"file_name": "saved", "split": "test"}, "tr": {"file_name": "saved"}},
    )
    for name, split in (("t", "test"), ("tr", "train")):
        train, _ = load_records(make_cfg(dataset=name, dataset_dir=str(tmp_path)))
        assert [r["messages"][0]["content"] for r in train] == [f"{split} 0", f"{split} 1"]


def test_split_of_a_plain_file_is_refused(make_cfg, write_json, tmp_path):
    write_json(tmp_path / "d.json", [{"instruction": "q", "output": "a"}])
    write_json(tmp_path / "dataset_info.json", {"d": {"file_name": "d.json", "split": "validation"}})
    with pytest.raises(LmforgeError, match=r"entry 'd': split 'validation' cannot be taken from .*d\.json"):
        load_records(make_cfg(dataset="d", dataset_dir=str(tmp_path)))


def test_a_saved_dataset_folder_reads_its_arrow_data_not_its_metadata(make_cfg, tmp_path):
    Dataset.from_list([{"instruction": "q", "output": "a"}]).save_to_disk(str(tmp_path / "one"))
    train, _ = load_records(make_cfg(dataset=str(tmp_path / "one"), dataset_dir=str(tmp_path)))
    assert [r["messages"][0]["content"] for r in train] == ["q"]
