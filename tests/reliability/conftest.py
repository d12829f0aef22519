"""The uninterrupted reference run every resume test compares against (trained once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_run import build_trainer, losses_by_step


@pytest.fixture(scope="session")
def reference_losses(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, float]:
    """Per-step losses of the uninterrupted 20-step tiny run."""
    trainer = build_trainer(tiny_model_dir, tmp_path_factory.mktemp("reference"), save_steps=100)
    trainer.train()
    losses = losses_by_step(trainer)
    assert sorted(losses) == list(range(1, 21))
    return losses
