"""Every example config validates, and its data sets resolve: what users copy must work."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmforge.config import load_config
from lmforge.data.registry import resolve_datasets

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert any(p.name == "quickstart.yaml" for p in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_is_valid(path: Path) -> None:
    cfg = load_config(path)
    attrs = resolve_datasets(cfg.data.dataset, str(REPO / cfg.data.dataset_dir))
    assert attrs and all(Path(a.path).exists() for a in attrs)
