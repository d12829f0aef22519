"""The stage seam: every implemented stage is registered with its data encoding, and no stage's
trainer redefines a private Trainer method."""

from __future__ import annotations

from transformers import Trainer

from lmforge.config.method import IMPLEMENTED_STAGES
from lmforge.data.encoders import ENCODINGS
from lmforge.train.grpo_trainer import GrpoTrainer
from lmforge.train.ppo.trainer import PpoTrainer
from lmforge.train.reliability import ReliableTrainerMixin
from lmforge.train.stages import get_stage, stage_names
from lmforge.train.stages.distill import DistillTrainer
from lmforge.train.stages.dpo import DpoTrainer
from lmforge.train.stages.kto import KtoTrainer
from lmforge.train.stages.rm import RewardTrainer
from lmforge.train.trainer import LmforgeTrainer, LmforgeTrainerMixin


def test_every_implemented_stage_is_registered_with_its_encoding() -> None:
    assert set(stage_names()) == set(IMPLEMENTED_STAGES)
    for name in stage_names():
        assert get_stage(name).encoding is ENCODINGS[name], name


def test_stage_trainers_share_the_mixin_and_redefine_no_private_trainer_method() -> None:
    private = {name for name in dir(Trainer) if name.startswith("_") and not name.startswith("__")}
    for trainer in (LmforgeTrainer, DpoTrainer, KtoTrainer, RewardTrainer, PpoTrainer, GrpoTrainer, DistillTrainer):
        assert issubclass(trainer, LmforgeTrainerMixin) and issubclass(trainer, ReliableTrainerMixin)
        for cls in trainer.__mro__:
            if not cls.__module__.startswith("lmforge"):  # transformers' and trl's own classes
                continue
            assert sorted(private & set(vars(cls))) == [], cls.__qualname__
