"""A stop is agreed across ranks at a step boundary: SIGTERM to one rank makes every rank save the
same checkpoint and exit; after --resume, a NaN loss on one rank stops every rank at that step, and
a disk too full for rank 0's save stops every rank before anything is written; a rank that stalls
fails the job after ddp_timeout, in words."""

from __future__ import annotations

import socket
from pathlib import Path

from dist_helpers import base_config, launch, observed, worker_env, write_config


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("lmforge: error:")]


def test_sigterm_nan_and_a_full_disk_on_one_rank_stop_all(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    out, observe = tmp_path / "stop", tmp_path / "observe"
    config = write_config(tmp_path / "stop.yaml", base_config(tiny_model_dir, data_file, out, max_steps=6))
    env = worker_env(tmp_path, observe, out, FORCE_TORCHRUN="1", NPROC_PER_NODE="2", LMFORGE_OBSERVE_SIGTERM="1:2")
    stopped = launch(config, env)
    assert stopped.returncode == 1, stopped.stderr[-3000:]
    lines = _errors(stopped.stderr)
    assert len(lines) == 1  # both ranks stopped with the same message: shown once
    assert lines[0].startswith("lmforge: error: ranks 0, 1 (")
    assert f"training stopped by SIGTERM at step 2; checkpoint saved to {out}/checkpoint-2" in lines[0]
    assert (out / "checkpoint-2" / "lmforge_complete.json").is_file()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert all(max(int(s[0]) for s in rank["steps"]) == 2 for rank in observed(observe).values())

    for seen in observe.glob("rank*.json"):
        seen.unlink()
    env.update(LMFORGE_OBSERVE_SIGTERM="", LMFORGE_OBSERVE_NAN="0:4")
    nan = launch(config, env, "--resume")
    assert nan.returncode == 1, nan.stderr[-3000:]
    lines = _errors(nan.stderr)
    assert len(lines) == 1 and lines[0].startswith("lmforge: error: ranks 0, 1 (")
    assert "training loss is not finite at step 4 (epoch " in lines[0] and ") on rank 0; stopped" in lines[0]
    steps = {rank: sorted({int(s[0]) for s in seen["steps"]}) for rank, seen in observed(observe).items()}
    assert steps == {0: [3, 4], 1: [3, 4]}  # resumed at 3; nobody went past the NaN step
    assert not (out / "checkpoint-4").exists()

    env.update(LMFORGE_OBSERVE_NAN="", LMFORGE_OBSERVE_FULL_DISK="0:3")
    full = launch(config, env, "--resume", "save_steps=3")
    assert full.returncode == 1, full.stderr[-3000:]
    lines = _errors(full.stderr)
    assert len(lines) == 1 and lines[0].startswith("lmforge: error: ranks 0, 1 ("), full.stderr[-3000:]
    assert f"not enough disk space to save checkpoint-3 in {out}: needs about" in lines[0]
    assert "(on rank 0 (" in lines[0] and "Traceback" not in full.stderr
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]  # the last good one, intact
    assert (out / "checkpoint-2" / "lmforge_complete.json").is_file()

    # Rank 1 stalls in step 3 until the launcher tears the job down: rank 0 gives up after
    # ddp_timeout (15 s; on CPU it was torch's 30 minutes, as transformers drops the key there) and
    # says so in one line.
    env.update(LMFORGE_OBSERVE_FULL_DISK="", LMFORGE_OBSERVE_STALL="1:3:600")
    stalled = launch(config, env, "--resume", "ddp_timeout=15")
    assert stalled.returncode == 1, stalled.stderr[-3000:]
    lines = _errors(stalled.stderr)
    assert f"rank 0 ({socket.gethostname()}): waited longer than ddp_timeout=15 s for the other ranks" in lines[0]
    assert "Traceback" not in stalled.stderr
