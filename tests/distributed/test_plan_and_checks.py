"""Single-process parts of the launch: when to re-launch, what torchrun is given, how failures and
cluster-check reports become messages, and how a DeepSpeed config is filled. No processes start."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from lmforge.config import build_config
from lmforge.distributed.cluster import cluster_problems
from lmforge.distributed.deepspeed import SHIPPED, fill_deepspeed_config, load_deepspeed_config
from lmforge.errors import LmforgeError
from lmforge.launch.plan import LaunchPlan, plan_launch
from lmforge.launch.torchrun import (
    quiet_node_launcher,
    rendezvous_message,
    report_failures,
    stopped_message,
    torchrun_argv,
)


def test_one_process_unless_asked_or_several_gpus() -> None:
    assert plan_launch({}, gpu_count=0, join_timeout=60) is None
    assert plan_launch({}, gpu_count=1, join_timeout=60) is None
    assert plan_launch({"NPROC_PER_NODE": "1"}, gpu_count=0, join_timeout=60) is None
    two_gpus = plan_launch({}, gpu_count=2, join_timeout=60)
    assert two_gpus is not None and (two_gpus.nnodes, two_gpus.nproc_per_node) == (1, 2)
    forced = plan_launch({"FORCE_TORCHRUN": "1"}, gpu_count=0, join_timeout=60)
    assert forced is not None and forced.nproc_per_node == 1 and forced.master_addr == "127.0.0.1"


def test_only_a_multi_node_launcher_quiets_torchs_cpp_log() -> None:
    launcher = {"NNODES": "2"}
    quiet_node_launcher(launcher, debug=False)
    assert launcher["TORCH_CPP_LOG_LEVEL"] == "FATAL" and launcher["LMFORGE_QUIETED_CPP_LOG"] == "1"
    for env, debug in [({"NNODES": "2"}, True), ({"NNODES": "2", "TORCH_CPP_LOG_LEVEL": "INFO"}, False),
                       ({"NNODES": "2", "LOCAL_RANK": "0"}, False), ({}, False), ({"NNODES": "x"}, False)]:  # fmt: skip
        before = dict(env)
        quiet_node_launcher(env, debug=debug)
        assert env == before  # --debug, the user's own level, a worker, one node, a bad value: untouched


def test_workers_never_relaunch() -> None:
    for env in ({"LOCAL_RANK": "0", "FORCE_TORCHRUN": "1"}, {"WORLD_SIZE": "2", "NPROC_PER_NODE": "2"}):
        assert plan_launch(env, gpu_count=8, join_timeout=60) is None


def test_multi_node_plan_and_torchrun_arguments() -> None:
    env = {"NNODES": "2", "NODE_RANK": "1", "NPROC_PER_NODE": "4", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29501"}
    plan = plan_launch(env, gpu_count=4, join_timeout=45)
    assert plan == LaunchPlan(2, 1, 4, "10.0.0.1", 29501, 45) and plan.world_size == 8
    assert torchrun_argv(plan, ["train", "cfg.yaml"]) == [
        "--nnodes=2", "--node-rank=1", "--nproc-per-node=4", "--master-addr=10.0.0.1", "--master-port=29501",
        "--rdzv-conf=timeout=45", "--max-restarts=0", "--module", "lmforge", "train", "cfg.yaml",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("env", "expect"),
    [
        ({"NNODES": "2"}, "MASTER_ADDR"),
        ({"NNODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "h"}, "NODE_RANK=2 is not a node of NNODES=2"),
        ({"NPROC_PER_NODE": "two"}, "NPROC_PER_NODE='two' is not a whole number"),
        ({"NNODES": "0"}, "NNODES=0 must be at least 1"),
    ],
)
def test_bad_launch_environment_is_refused(env: dict[str, str], expect: str) -> None:
    with pytest.raises(LmforgeError, match=expect):
        plan_launch(env, gpu_count=0, join_timeout=60)


def _failure(exitcode: int, message: str | None, timestamp: int) -> SimpleNamespace:
    data = {"message": message} if message else {}
    return SimpleNamespace(exitcode=exitcode, error_file_data=data, timestamp=timestamp,
                           signal_name=lambda: "SIGKILL")  # fmt: skip


def test_each_failed_rank_is_one_line_and_the_exit_code_is_the_workers(capsys) -> None:
    code = report_failures({
        1: _failure(1, "output_dir x is not writable", 5),
        0: _failure(1, "output_dir x is not writable", 6),
        2: _failure(-9, None, 7),
    })  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(lines) == 2
    assert lines[0].startswith("lmforge: error: ranks 0, 1 (") and lines[0].endswith("): output_dir x is not writable")
    assert lines[1].endswith("killed by SIGKILL (exit code 137)")
    assert report_failures({3: _failure(-15, None, 1)}) == 143
    # torchelastic's "<NONE>": the worker wrote no error file (an unexpected error, traceback above)
    assert report_failures({1: _failure(1, "<NONE>", 1)}) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("): exited with code 1 (see its output above)")


def test_a_signal_to_the_launcher_names_the_checkpoint_to_resume(tmp_path: Path) -> None:
    assert stopped_message("SIGTERM", str(tmp_path)).endswith(f"no complete checkpoint in {tmp_path}")
    checkpoint = tmp_path / "checkpoint-27"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text("{}")
    (checkpoint / "lmforge_complete.json").write_text("{}")
    assert stopped_message("SIGTERM", str(tmp_path)) == (
        f"training stopped by SIGTERM (sent to the launcher); latest complete checkpoint {checkpoint} "
        "(run the same command with --resume to continue)"
    )


def test_missing_node_message_names_it() -> None:
    plan = LaunchPlan(2, 0, 1, "127.0.0.1", 29555, 5)
    text = rendezvous_message(plan, TimeoutError("Timed out after 6 seconds waiting for clients. 1/2 clients joined."))
    assert text.startswith("node 1 (NODE_RANK=1) never joined: 1 of NNODES=2 nodes arrived within rdzv_timeout=5 s")
    other = rendezvous_message(LaunchPlan(2, 1, 1, "10.1.1.1", 29555, 5), TimeoutError("timed out"))
    assert other.startswith("node 1 could not reach node 0 (NODE_RANK=0) at 10.1.1.1:29555 within rdzv_timeout=5 s")


def _report(rank: int, **changes: object) -> dict:
    base = {"rank": rank, "local_rank": rank, "node": 0, "host": "h", "world_size": 2, "expected": "2:1x2",
            "versions": {"torch": "2.13.0"}, "output_dir": None, "cache": None, "output_path": "out"}  # fmt: skip
    return {**base, **changes}


def test_cluster_problems_name_the_rank_host_and_cause() -> None:
    assert cluster_problems([_report(0), _report(1)], 2) == []
    problems = cluster_problems(
        [_report(0, expected="2:2x1"), _report(1, node=1, host="b", expected="3:1x3", versions={"torch": "2.12.0"},
                                             output_dir="output_dir out is not writable here")],
        2,
    )  # fmt: skip
    assert problems == [
        "rank 1 (b, node 1) was launched for world size 3 (NNODES x NPROC_PER_NODE = 1x3) but the job has 2 "
        "processes: NNODES and NPROC_PER_NODE must be the same on every node",
        "rank 1 (b, node 1): output_dir out is not writable here",
        "rank 1 (b, node 1) runs other software versions: torch 2.12.0 (rank 0: 2.13.0)",
    ]


def test_shipped_deepspeed_configs_are_filled_from_the_run(tmp_path: Path) -> None:
    cfg = build_config({"per_device_train_batch_size": 2, "gradient_accumulation_steps": 3, "max_grad_norm": 0.5})
    for name in SHIPPED:
        filled = fill_deepspeed_config(load_deepspeed_config(name), cfg, True, False, world_size=4, cuda=False)
        assert (filled["train_micro_batch_size_per_gpu"], filled["gradient_accumulation_steps"]) == (2, 3)
        assert (filled["train_batch_size"], filled["gradient_clipping"]) == (24, 0.5)
        assert filled["bf16"]["enabled"] is True and filled["fp16"]["enabled"] is False
        assert filled["zero_optimization"]["stage"] == int(name[4])
        for block in ("offload_optimizer", "offload_param"):
            if block in filled["zero_optimization"]:
                assert filled["zero_optimization"][block]["pin_memory"] is False
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 2}}))
    with pytest.raises(LmforgeError, match="train_micro_batch_size_per_gpu is 4 but the run has per_device"):
        fill_deepspeed_config(load_deepspeed_config(str(path)), cfg, True, False, 1, False)
    with pytest.raises(LmforgeError, match="deepspeed: ds_z4 is neither a shipped config nor a file"):
        load_deepspeed_config("ds_z4")
