"""A run's run_config.yaml (every key explicit, defaults included) loads back as the same config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lmforge.config import build_config, load_config


@pytest.mark.parametrize(
    "flat",
    [{}, {"finetuning_type": "full"}, {"finetuning_type": "full", "use_galore": True, "galore_rank": 4}],
    ids=["defaults", "full", "galore"],
)
def test_a_dumped_config_loads_back_unchanged(flat: dict, tmp_path: Path) -> None:
    cfg = build_config({"dataset": "identity", **flat})
    path = tmp_path / "run_config.yaml"
    path.write_text(yaml.safe_dump(cfg.to_flat()))
    assert load_config(str(path), []).to_flat() == cfg.to_flat()
