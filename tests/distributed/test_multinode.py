"""Two nodes on loopback (NNODES=2, one process each): the run matches one process; a node that
never arrives, mismatched NPROC_PER_NODE and an output_dir one rank cannot write fail before
training, naming the rank (or node) and the cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from dist_helpers import base_config, launch, start, wait_nodes, worker_env, write_config
from safetensors.torch import load_file

from lmforge.config import build_config
from lmforge.launch.plan import free_port
from lmforge.train.run import run_training


def _node(tmp: Path, rank: int, port: int, nproc: int = 1, **extra: str) -> dict[str, str]:
    return worker_env(tmp, NNODES="2", NODE_RANK=str(rank), NPROC_PER_NODE=str(nproc), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), **extra)  # fmt: skip


def test_two_nodes_on_loopback_match_one_process(tiny_model_dir: Path, data_file: Path, tmp_path: Path,
                                                 monkeypatch) -> None:  # fmt: skip
    """Node 1 starts first (nodes may start in any order within rdzv_timeout)."""
    out = tmp_path / "nodes"
    # A loaded CI box: nodes meet within 240 s; a collective stuck for 120 s fails with gloo's error.
    flat = base_config(tiny_model_dir, data_file, out, num_train_epochs=1, rdzv_timeout=240, ddp_timeout=120)
    config, port = write_config(tmp_path / "nodes.yaml", flat), free_port()
    logs = [tmp_path / "node1.log", tmp_path / "node0.log"]
    nodes = [start(config, _node(tmp_path, 1, port), logs[0]), start(config, _node(tmp_path, 0, port), logs[1])]
    second_log, first_log = wait_nodes(nodes, logs, timeout=420)
    assert nodes[1].returncode == 0, first_log[-3000:]
    assert nodes[0].returncode == 0, second_log[-3000:]
    assert first_log.count("training finished at step 4") == 1 and "training finished" not in second_log
    assert "frame #" not in first_log + second_log  # torch's C++ retry warnings stay out of the launchers'

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home-single"))
    single = tmp_path / "single"
    run_training(build_config({**flat, "output_dir": str(single), "per_device_train_batch_size": 2}))
    nodes_weights, alone = load_file(out / "model.safetensors"), load_file(single / "model.safetensors")
    assert max((nodes_weights[k] - alone[k]).abs().max().item() for k in nodes_weights) < 1e-4


@pytest.mark.parametrize(
    ("rank", "message"),
    [
        (0, "lmforge: error: node 1 (NODE_RANK=1) never joined: 1 of NNODES=2 nodes arrived within rdzv_timeout=5 s"),
        (1, "lmforge: error: node 1 could not reach node 0 (NODE_RANK=0) at 127.0.0.1:"),
    ],
    ids=["node-0-alone", "node-1-alone"],
)
def test_a_node_alone_names_the_missing_one(
    rank: int, message: str, tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    flat = base_config(tiny_model_dir, data_file, tmp_path / "out", rdzv_timeout=5)
    done = launch(write_config(tmp_path / "alone.yaml", flat), _node(tmp_path, rank, free_port()), timeout=120)
    assert done.returncode == 1
    assert message in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "frame #" not in done.stderr  # nor torch's C++ stacks
    assert not (tmp_path / "out").exists()


def test_mismatched_nodes_and_an_unwritable_output_dir_fail_before_training(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    """Node 1 is launched with NPROC_PER_NODE=2 (node 0 with 1), and its output_dir (relative, so
    another folder on that node) lies under a file, so no rank there can create it."""
    here, there = tmp_path / "node0", tmp_path / "node1"
    here.mkdir(), there.mkdir()
    (there / "blocked").write_text("a file where a folder should be")
    flat = base_config(tiny_model_dir, data_file, Path("blocked/out"))
    port = free_port()
    config = write_config(tmp_path / "mixed.yaml", flat)
    logs = [tmp_path / "node1.log", tmp_path / "node0.log"]
    nodes = [start(config, _node(tmp_path, 1, port, nproc=2), logs[0], cwd=there),
             start(config, _node(tmp_path, 0, port), logs[1], cwd=here)]  # fmt: skip
    texts = wait_nodes(nodes, logs, timeout=300)
    assert [node.returncode for node in nodes] == [1, 1]
    for log in texts:
        assert "cluster check failed" in log and "Traceback" not in log
        assert "was launched for world size 4 (NNODES x NPROC_PER_NODE = 2x2) but the job has 3 processes" in log
        assert "output_dir blocked/out cannot be created:" in log and "blocked is a file, not a folder" in log
        assert "rank 1 (" in log and "rank 2 (" in log
    assert not (here / "blocked").exists() and (there / "blocked").is_file()
