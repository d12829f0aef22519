"""Trackers group: LLaMA-Factory's SwanLab keys (``report_to`` itself lives in the train group).

``use_swanlab: true`` is LLaMA-Factory's spelling of adding ``swanlab`` to ``report_to``. Every
tracker runs offline or locally unless the user asks for a cloud mode, so a run never needs a
network or an account.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrackersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    use_swanlab: bool = Field(False, description="Log to SwanLab (same as adding swanlab to report_to).")
    swanlab_project: str = Field("lmforge", description="SwanLab project name.")
    swanlab_run_name: str | None = Field(None, description="SwanLab experiment name (default: output_dir name).")
    swanlab_mode: Literal["offline", "local", "cloud", "disabled"] = Field(
        "offline",
        description="SwanLab mode: offline writes output_dir/swanlog without a network; cloud needs a login.",
    )
