"""RunConfig: the one validated configuration of a run, grouped as users think of it.

Users write flat YAML with LLaMA-Factory's key names; ``RunConfig.from_flat`` routes each key
to its group, so ``cfg.data.cutoff_len`` and ``cutoff_len:`` are the same setting.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lmforge.config.data import DataConfig
from lmforge.config.distill import DistillConfig
from lmforge.config.eval import EvalConfig
from lmforge.config.export import ExportConfig
from lmforge.config.generate import GenerateConfig
from lmforge.config.grpo import GrpoConfig
from lmforge.config.method import MethodConfig
from lmforge.config.model import ModelConfig
from lmforge.config.optim import OptimizerConfig
from lmforge.config.rewards import RewardsConfig
from lmforge.config.trackers import TrackersConfig
from lmforge.config.train import TrainConfig

GROUPS: dict[str, type[BaseModel]] = {
    "model": ModelConfig,
    "data": DataConfig,
    "method": MethodConfig,
    "train": TrainConfig,
    "generate": GenerateConfig,
    "export": ExportConfig,
    "trackers": TrackersConfig,
    "optimizer": OptimizerConfig,
    "eval": EvalConfig,
    "rewards": RewardsConfig,  # grpo, ppo
    "grpo": GrpoConfig,
    "distill": DistillConfig,
}

KEY_TO_GROUP: dict[str, str] = {
    key: group for group, schema in GROUPS.items() for key in schema.model_fields if key != "extra"
}


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    method: MethodConfig = MethodConfig()
    train: TrainConfig = TrainConfig()
    generate: GenerateConfig = GenerateConfig()
    export: ExportConfig = ExportConfig()
    trackers: TrackersConfig = TrackersConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    eval: EvalConfig = EvalConfig()
    rewards: RewardsConfig = RewardsConfig()
    grpo: GrpoConfig = GrpoConfig()
    distill: DistillConfig = DistillConfig()

    def to_flat(self, *, only_set: bool = False) -> dict[str, Any]:
        """The config as flat LLaMA-Factory-style keys (what run_config.yaml holds)."""
        flat: dict[str, Any] = {}
        for group in GROUPS:
            section: BaseModel = getattr(self, group)
            dumped = section.model_dump(exclude_unset=only_set)
            extra = dumped.pop("extra", {})
            flat.update(dumped)
            flat.update(extra)
        return flat

    def explicitly_set(self, key: str) -> bool:
        """True when the user wrote ``key`` (rather than relying on its default)."""
        group = KEY_TO_GROUP.get(key)
        return group is not None and key in getattr(self, group).model_fields_set
