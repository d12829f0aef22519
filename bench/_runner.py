"""Shared machinery of the benchmarks: run a command, watch its process tree and its step log.

A run is one subprocess. While it runs the harness polls, every ``POLL_S`` seconds:
- the resident memory (RSS) of the process and all its descendants, summed (peak kept);
- the tool's ``trainer_log.jsonl``, noting the wall time at which each step's line appears.

From those the figures are computed the same way for every tool:
- ``first_step_s``: command start → the first step's log line (imports, data, model, step 1);
- ``startup_s``: command start → the training loop's start (first_step_s less the seconds the tool
  logged between its loop start and step 1): imports, config, data, model and trainer set-up;
- ``tokens_per_s``: non-padding input tokens of steps 3..N divided by the time between the
  lines of step 2 and step N (steady state: the first two steps are excluded);
- ``peak_rss_gb``: the process tree's peak RSS.
Token counts come from the tools' own logs (transformers' ``include_num_input_tokens_seen:
non_padding``, logged as ``total_tokens`` by LLaMA-Factory and ``num_input_tokens_seen`` by lmforge
and TRL).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".bench" / "venv"
PROJECT_PY = ROOT / ".venv" / "bin" / "python"
POLL_S = 0.1
STEADY_FROM = 2  # steps 1..2 are warm-up; throughput counts steps 3..N


@dataclass
class RunResult:
    name: str
    rc: int
    wall_s: float
    first_step_s: float | None
    tokens_per_s: float | None
    steady_steps: int
    steady_s: float | None
    peak_rss_gb: float
    tokens_per_cpu_s: float | None = None
    cpu_s: float = 0.0
    startup_s: float | None = None
    losses: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    log: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def tree_cpu(proc: psutil.Process) -> float:
    """User+system CPU seconds of the tree, including children already waited for. Unlike wall
    time, it barely moves when other processes compete for the cores."""
    total = 0.0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + (t.children_user + t.children_system if p is proc else 0.0)
        except psutil.NoSuchProcess:
            pass
    return total


def _step_of(row: dict) -> int | None:
    step = row.get("step", row.get("current_steps"))
    return int(step) if step is not None else None


def _tokens_of(row: dict) -> int | None:
    value = row.get("num_input_tokens_seen", row.get("total_tokens"))
    return int(value) if value is not None else None


def _elapsed_of(row: dict) -> float | None:
    """Seconds from the training loop's start to this log line, as the tool logged it."""
    if "elapsed" in row:
        return float(row["elapsed"])
    if "elapsed_time" in row:  # LLaMA-Factory: "H:MM:SS" (1 s resolution)
        h, m, s = (int(x) for x in str(row["elapsed_time"]).split(":"))
        return h * 3600 + m * 60 + s
    return None


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line being written
    return rows


def run_and_watch(
    name: str,
    cmd: list[str],
    log_path: Path,
    console: Path,
    env: dict | None = None,
    cwd: Path = ROOT,
    timeout_s: float = 1800,
) -> RunResult:
    """Run ``cmd``, polling its process tree RSS and the step log at ``log_path``."""
    full_env = {**os.environ, **(env or {})}
    seen: dict[int, float] = {}
    cpu_at: dict[int, float] = {}
    peak = 0
    cpu = 0.0
    start = time.monotonic()
    with console.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=cwd)
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            peak = max(peak, tree_rss(watched))
            cpu = max(cpu, tree_cpu(watched))
            now = time.monotonic() - start
            for row in read_log(log_path):
                step = _step_of(row)
                if step is not None and "loss" in row and step not in seen:
                    seen[step] = now
                    cpu_at[step] = cpu
            if now > timeout_s:
                proc.kill()
                break
            time.sleep(POLL_S)
    wall = time.monotonic() - start
    rows = [r for r in read_log(log_path) if "loss" in r and _step_of(r) is not None]
    for row in rows:  # steps logged in the last poll interval
        seen.setdefault(_step_of(row), wall)
        cpu_at.setdefault(_step_of(row), cpu)
    by_step = {_step_of(r): r for r in rows}
    steps = sorted(by_step)
    losses = [float(by_step[s]["loss"]) for s in steps]
    tokens = [t for t in (_tokens_of(by_step[s]) for s in steps) if t is not None]
    first = seen.get(steps[0]) if steps else None
    loop_start = _elapsed_of(by_step[steps[0]]) if steps else None
    startup = first - loop_start if first is not None and loop_start is not None else None
    tps = steady = tpc = None
    n_steady = 0
    if len(steps) > STEADY_FROM and len(tokens) == len(steps):
        a, b = steps.index(STEADY_FROM), len(steps) - 1
        steady = seen[steps[b]] - seen[steps[a]]
        n_steady = steps[b] - steps[a]
        if steady > 0:
            tps = (tokens[b] - tokens[a]) / steady
        steady_cpu = cpu_at[steps[b]] - cpu_at[steps[a]]
        if steady_cpu > 0:
            tpc = (tokens[b] - tokens[a]) / steady_cpu
    tail = console.read_text(errors="replace")[-3000:] if proc.returncode else ""
    return RunResult(
        name,
        proc.returncode if proc.returncode is not None else -9,
        wall,
        first,
        tps,
        n_steady,
        steady,
        peak / 1e9,
        tpc,
        cpu,
        startup,
        losses,
        tokens,
        tail,
    )


def peer_env() -> dict[str, str]:
    return {"DISABLE_VERSION_CHECK": "1", "PATH": f"{PEER_VENV / 'bin'}:{os.environ.get('PATH', '')}"}


def project_env() -> dict[str, str]:
    return {"PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"}


def machine_line() -> str:
    import platform

    load = os.getloadavg()
    return (
        f"{platform.machine()} {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"load avg at end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )


def versions(python: Path, modules: list[str]) -> str:
    code = ";".join(
        f"exec('try:\\n import {m}; print(\"{m}\", {m}.__version__)\\nexcept Exception: pass')" for m in modules
    )
    res = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env={**os.environ, "DISABLE_VERSION_CHECK": "1"}
    )
    return ", ".join(res.stdout.split("\n")).strip(", ").replace("\n", " ")


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def write_results(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
