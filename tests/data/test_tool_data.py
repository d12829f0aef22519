"""Tool data end to end (issue 14, items 3, 11, 13): LLaMA-Factory's glaive layout trains on
``template: chatml`` with the tools and calls rendered in its default tool format, ``template: auto``
on a chat template that ignores tools is refused before training, and a record whose tool call is
malformed is dropped and counted by index instead of aborting tokenization."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmforge.config import build_config
from lmforge.data.pipeline import build_datasets, read_all
from lmforge.data.templates import get_template
from lmforge.errors import LmforgeError
from lmforge.train.run import run_training

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def _cfg(tmp_path: Path, model: Path | str, **keys):
    flat = {
        "model_name_or_path": str(model), "dataset": "glaive_toolcall_demo", "dataset_dir": str(DATA_DIR),
        "template": "chatml", "cutoff_len": 512, "output_dir": str(tmp_path / "out"), "max_steps": 1,
        "per_device_train_batch_size": 2, "plot_loss": False, "report_to": "none",
        "preprocessing_num_workers": 1, **keys,
    }  # fmt: skip
    return build_config(flat)


def _trained_text(tokenizer, row) -> str:
    return tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100])


def test_glaive_demo_renders_tools_in_the_prompt_and_trains_the_call(tokenizer, data_home, tmp_path):
    cfg = _cfg(tmp_path, "unused")
    data = build_datasets(cfg, tokenizer, get_template("chatml", tokenizer))
    assert data.report.records == {"glaive_toolcall_demo": 6} and not data.report.dropped
    first = data.train[0]
    text = tokenizer.decode(first["input_ids"])
    assert text.startswith(
        "<|im_start|>system\nYou have access to the following tools:\n> Tool Name: get_weather\n"
        "Tool Description: Get the current weather of a city\nTool Args:\n"
        "  - city (string, required): The city name\n"
    )
    assert _trained_text(tokenizer, first) == (
        'Action: get_weather\nAction Input: {"city": "Paris"}<|im_end|>\n'
        "It is sunny in Paris right now, at 18 degrees.<|im_end|>\n"
    )


def test_glaive_demo_trains_on_chatml(tiny_model_dir, data_home, tmp_path):
    result = run_training(_cfg(tmp_path, tiny_model_dir))
    assert result.global_step == 1 and (result.output_dir / "train_results.json").is_file()


def test_glaive_demo_on_auto_is_refused_before_training_naming_chatml(tiny_model_dir, data_home, tmp_path):
    with pytest.raises(LmforgeError) as info:
        run_training(_cfg(tmp_path, tiny_model_dir, template="auto"))
    assert "does not render tools" in info.value.message and "set template: chatml" in info.value.hint
    assert not (tmp_path / "out").exists()


def test_malformed_tool_calls_drop_the_record_counted_by_index(make_cfg, write_json, tmp_path):
    def row(arguments) -> dict:
        call = json.dumps({"name": "f", "arguments": arguments})
        turns = [{"from": "human", "value": "go"}, {"from": "function_call", "value": call}]
        return {"conversations": [*turns, {"from": "observation", "value": "1"}, {"from": "gpt", "value": "done"}]}

    write_json(tmp_path / "t.json", [row({"a": 1}), row("{a: 1"), row({"a": 2}), row("[1]"), row("{oops")])
    path = str(tmp_path / "t.json")
    records = read_all(make_cfg(dataset=path, dataset_dir=str(tmp_path)))
    assert len(records.train) == 2
    assert dict(records.dropped) == {
        f"tool call arguments are not valid JSON [{path} records 1, 4]": 2,
        f"tool call arguments are not a JSON object [{path} record 3]": 1,
    }


def test_tools_that_are_not_json_drop_the_record(make_cfg, write_json, tmp_path):
    turns = [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]
    write_json(tmp_path / "t.json", [{"conversations": turns, "tools": "[{name: f}]"}, {"conversations": turns}])
    path = str(tmp_path / "t.json")
    records = read_all(make_cfg(dataset=path, dataset_dir=str(tmp_path)))
    assert len(records.train) == 1 and dict(records.dropped) == {f"tools is not valid JSON [{path} record 0]": 1}
