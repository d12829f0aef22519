"""Keys that only one stage reads (the rewards, grpo and distill groups): set for another stage,
they would be silently ignored, so they are refused naming the stage that takes them.

A key written at its default value changes nothing (a run_config.yaml given back as a config holds
every key): allowed.
"""

from __future__ import annotations

from typing import Any

from lmforge.errors import LmforgeError

GROUP_STAGES: dict[str, tuple[str, ...]] = {"rewards": ("grpo", "ppo"), "grpo": ("grpo",), "distill": ("distill",)}
KEY_STAGES: dict[str, tuple[str, ...]] = {"max_completion_length": ("grpo", "distill")}  # distill_on_policy too


def check_stage_keys(config: Any) -> None:
    stage = config.method.stage
    for group, stages in GROUP_STAGES.items():
        section = getattr(config, group)
        for key in sorted(section.model_fields_set):
            takes = KEY_STAGES.get(key, stages)
            if stage in takes or getattr(section, key) == type(section).model_fields[key].default:
                continue
            raise LmforgeError(
                f"{key} applies to stage {' or '.join(takes)}, and this run is stage {stage}",
                f"remove {key}, or set stage: {takes[0]}",
            )
