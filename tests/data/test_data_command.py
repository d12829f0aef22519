"""`lmforge data`: rendered samples mark exactly the trained text, with counts and the set's statistics."""

from __future__ import annotations

import argparse

from lmforge.commands import data as data_command


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    data_command.register(parser.add_subparsers(dest="command"))
    args, extra = parser.parse_known_args(argv)
    args.overrides = extra
    return args.func(args)


def test_spans_group_trained_and_masked_runs():
    assert data_command.spans([1, 2, 3, 4, 5], [-100, -100, 3, 4, -100]) == [
        (False, [1, 2]),
        (True, [3, 4]),
        (False, [5]),
    ]


def test_data_command_renders_samples_and_statistics(tokenizer, builtin_dir, write_json, data_home, tmp_path, capsys):
    write_json(tmp_path / "d.json", [{"instruction": "Hi", "output": "Hello!"}, {"instruction": "Yo", "output": ""}])
    config = tmp_path / "cfg.yaml"
    config.write_text(
        f"model_name_or_path: {builtin_dir}\ndataset: {tmp_path / 'd.json'}\ntemplate: chatml\ncutoff_len: 64\n"
    )
    assert _run(["data", str(config), "--num-samples", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "--- sample 0: 14 tokens, 4 trained, 10 masked (trained text in [[...]])"
    assert "\n".join(out[1:6]) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n[[Hello!<|im_end|>\n]]"
    assert f"dropped: 1 (empty response [{tmp_path / 'd.json'} record 1])" in out
    assert any(line.startswith("train: 1 samples, tokens p50 14 p95 14 max 14") for line in out)
