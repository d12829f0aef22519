"""Command-line overrides and the CLI's own errors: flags that need values, blame on the right
source, usage for a bare `lmforge train`, and Ctrl-C as one line with exit code 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmforge import cli
from lmforge.config import load_config, parse_overrides
from lmforge.errors import LmforgeError


@pytest.mark.parametrize("args", [["--learning_rate"], ["--cutoff_len", "--do_eval"], ["--cutoff_len", "seed=3"]])
def test_a_flag_that_needs_a_value_is_refused_without_one(args: list[str]) -> None:
    with pytest.raises(LmforgeError, match=rf"{args[0]} needs a value \(only true/false keys may stand alone\)"):
        parse_overrides(args)


def test_boolean_flags_stand_alone_and_leave_the_next_setting_alone() -> None:
    assert parse_overrides(["--plot_loss", "lora_rank=4", "--do_eval", "--seed", "7"]) == {
        "plot_loss": True,
        "lora_rank": 4,
        "do_eval": True,
        "seed": 7,
    }
    assert parse_overrides(["--plot_loss", "false", "--max_steps", "-1"]) == {"plot_loss": False, "max_steps": -1}


def test_keys_that_take_true_or_a_value_accept_both() -> None:
    assert parse_overrides(["--resume_from_checkpoint"]) == {"resume_from_checkpoint": True}
    assert parse_overrides(["--resume_from_checkpoint", "out/checkpoint-5"]) == {
        "resume_from_checkpoint": "out/checkpoint-5"
    }


def test_training_argument_flags_follow_their_transformers_type() -> None:
    assert parse_overrides(["--torch_compile"]) == {"torch_compile": True}
    with pytest.raises(LmforgeError, match="--dataloader_num_workers needs a value"):
        parse_overrides(["--dataloader_num_workers"])


def test_override_mistakes_name_the_override_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("lora_rank: 4\n")
    with pytest.raises(LmforgeError, match=r"^command line \(--cutoff_len long\): key 'cutoff_len' has invalid"):
        load_config(path, ["--cutoff_len", "long"])
    with pytest.raises(LmforgeError, match=r"^command line \(lora_rnak=2\): unknown key 'lora_rnak'"):
        load_config(path, ["lora_rnak=2"])
    path.write_text("cutoff_len: long\n")
    with pytest.raises(LmforgeError, match=rf"^{path}: key 'cutoff_len' has invalid value 'long'"):
        load_config(path, ["lora_rank=2"])


def test_train_with_nothing_shows_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("usage: lmforge train")


def _interrupting_command(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    from lmforge.commands import config as config_command

    def run(args: object) -> int:
        raise error

    monkeypatch.setattr(config_command, "run", run)


def test_ctrl_c_prints_one_line_and_exits_130(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _interrupting_command(monkeypatch, KeyboardInterrupt())
    assert cli.main(["config"]) == 130
    assert capsys.readouterr().err == "lmforge: interrupted\n"


def test_an_error_while_unwinding_ctrl_c_still_reads_interrupted(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    error = EOFError("worker pool cleanup failed")  # datasets' pool fails like this while unwinding Ctrl-C
    error.__context__ = KeyboardInterrupt()
    _interrupting_command(monkeypatch, error)
    assert cli.main(["config"]) == 130
    assert capsys.readouterr().err == "lmforge: interrupted\n"


def test_ctrl_c_shows_the_traceback_with_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    _interrupting_command(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        cli.main(["--debug", "config"])


def test_the_cli_restores_the_sigint_handler_it_installs() -> None:
    before = signal.getsignal(signal.SIGINT)
    assert cli.main([]) == 0  # usage
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_during_tokenizing_with_two_workers_is_one_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The terminal sends SIGINT to the whole group: workers and parent. One line, exit 130."""
    records = [{"instruction": f"Question {i} " * 20, "output": "Answer " * 40} for i in range(20_000)]
    (tmp_path / "big.json").write_text(json.dumps(records))
    (tmp_path / "cfg.yaml").write_text(
        f"model_name_or_path: {tiny_model_dir}\ntemplate: chatml\ndataset: {tmp_path}/big.json\n"
        "preprocessing_num_workers: 2\ncutoff_len: 64\n"
    )
    env = dict(os.environ, LMFORGE_HOME=str(tmp_path / "home"), HF_DATASETS_CACHE=str(tmp_path / "hf"))
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "lmforge.cli", "data", str(tmp_path / "cfg.yaml")],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            start_new_session=True,  # its own process group, like a terminal's foreground job
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not ignored as a background job
        )
        try:
            while "tokenizing (num_proc=2)" not in err_path.read_text() and process.poll() is None:
                time.sleep(0.2)
            time.sleep(0.5)  # inside the pool's work
            os.killpg(process.pid, signal.SIGINT)
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    shown = err_path.read_text()
    assert code == 130, shown[-2000:]
    assert "Traceback" not in shown
    assert shown.rstrip().endswith("lmforge: interrupted")
