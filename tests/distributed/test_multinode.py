"""Two nodes on loopback (NNODES=2, one process each): the run matches one process; a node that
never arrives, mismatched NPROC_PER_NODE and an output_dir one rank cannot write fail before
training, naming the rank (or node) and the cause."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dist_helpers import base_config, launch, start, worker_env, write_config
from safetensors.torch import load_file

from lmforge.config import build_config
from lmforge.launch.plan import free_port
from lmforge.train.run import run_training


def _node(tmp: Path, rank: int, port: int, nproc: int = 1, **extra: str) -> dict[str, str]:
    return worker_env(tmp, NNODES="2", NODE_RANK=str(rank), NPROC_PER_NODE=str(nproc), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), **extra)  # fmt: skip


@pytest.mark.skipif(
    os.environ.get("LMFORGE_TEST_MULTINODE") != "1",
    reason="hung once in three full-suite runs on the loaded 2-core box (passes alone); "
    "run with LMFORGE_TEST_MULTINODE=1 until the hang is understood",
)
def test_two_nodes_on_loopback_match_one_process(tiny_model_dir: Path, data_file: Path, tmp_path: Path,
                                                 monkeypatch) -> None:  # fmt: skip
    out = tmp_path / "nodes"
    flat = base_config(tiny_model_dir, data_file, out, num_train_epochs=1, rdzv_timeout=240)  # a loaded CI box
    config, port = write_config(tmp_path / "nodes.yaml", flat), free_port()
    second = start(config, _node(tmp_path, 1, port))
    first = launch(config, _node(tmp_path, 0, port))
    second_log = second.communicate(timeout=300)[0]
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second_log[-3000:]
    assert first.stdout.count("training finished at step 4") == 1 and "training finished" not in second_log

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home-single"))
    single = tmp_path / "single"
    run_training(build_config({**flat, "output_dir": str(single), "per_device_train_batch_size": 2}))
    nodes, alone = load_file(out / "model.safetensors"), load_file(single / "model.safetensors")
    assert max((nodes[k] - alone[k]).abs().max().item() for k in nodes) < 1e-4


def test_a_node_that_never_arrives_is_named(tiny_model_dir: Path, data_file: Path, tmp_path: Path) -> None:
    flat = base_config(tiny_model_dir, data_file, tmp_path / "out", rdzv_timeout=5)
    done = launch(write_config(tmp_path / "alone.yaml", flat), _node(tmp_path, 0, free_port()), timeout=120)
    assert done.returncode == 1
    assert "lmforge: error: node 1 (NODE_RANK=1) never joined: 1 of NNODES=2 nodes arrived within rdzv_timeout=5 s" \
        in done.stderr  # fmt: skip
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


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
    second = start(config, _node(tmp_path, 1, port, nproc=2), cwd=there)
    first = launch(config, _node(tmp_path, 0, port), cwd=here)
    second_log = second.communicate(timeout=300)[0]
    assert first.returncode == 1 and second.returncode == 1
    for log in (first.stderr, second_log):
        assert "cluster check failed" in log and "Traceback" not in log
        assert "was launched for world size 4 (NNODES x NPROC_PER_NODE = 2x2) but the job has 3 processes" in log
        assert "output_dir blocked/out cannot be created:" in log and "blocked is a file, not a folder" in log
        assert "rank 1 (" in log and "rank 2 (" in log
    assert not (here / "blocked").exists() and (there / "blocked").is_file()
