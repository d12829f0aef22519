"""Fixtures of the distributed tests (helpers: dist_helpers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dist_helpers import RECORDS


@pytest.fixture()
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "samples.json"
    path.write_text(json.dumps(RECORDS))
    return path
