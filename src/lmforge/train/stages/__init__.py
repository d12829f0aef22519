"""The stage seam: one small module per training stage, looked up once by ``run_training``.

A ``Stage`` declares everything that differs between stages; the run (train/run.py) reads top to
bottom the same way for all of them:

1. ``check(cfg)`` — the stage's pre-flight checks: run with every other check, before the training
   arguments are built and before any weight loads (nothing written yet);
2. ``encoding`` — the record fields it requires (and the error when a data set lacks them) and its
   batch encoder (data/encoders.py): tokenized with the run's template, cached like SFT data;
3. ``head`` — what ``models.loader.load_model`` builds for the trained model (``causal_lm`` or
   ``seq_cls``);
4. ``load_models(cfg, tokenizer)`` — the other models it needs (reference, reward, teacher), each
   loaded through ``load_model`` from its own ``ModelConfig``; frozen, in training precision;
5. ``prepare_data(parts)`` — data work that needs the freshly loaded policy (e.g. precomputed
   reference log-probabilities), before the trainer exists and before a resume loads checkpoint
   weights;
6. ``collator(cfg, tokenizer)`` and ``build_trainer(parts)`` — the trainer: a class mixing
   ``train.trainer.LmforgeTrainerMixin`` (reliability, LoRA+, optimizers, no pickles, step
   metrics) into a transformers or trl Trainer; ``trainer_kwargs(parts)`` gives what every stage
   passes (datasets, collator, callbacks, reliability keys).

The training arguments exist before any weight loads (DeepSpeed ZeRO-3's partitioned init needs
them), and only the main process (``args.should_save``) writes to output_dir: both are the run's
job, so a stage never has to handle them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lmforge.data.encoders import Encoding
from lmforge.errors import LmforgeError


@dataclass
class StageParts:
    """What the run has built when a stage's trainer is made."""

    cfg: Any
    args: Any  # transformers TrainingArguments, built before any weight loaded
    model: Any
    tokenizer: Any
    template: Any
    data: Any  # data.pipeline.TokenizedData
    callbacks: list[Any]
    models: dict[str, Any] = field(default_factory=dict)  # from Stage.load_models: "reference", ...


def _nothing(*_: Any) -> None:
    return None


def _no_models(cfg: Any, tokenizer: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Stage:
    name: str
    encoding: Encoding
    collator: Callable[[Any, Any], Any]
    build_trainer: Callable[[StageParts], Any]
    head: str = "causal_lm"
    check: Callable[[Any], None] = _nothing
    load_models: Callable[[Any, Any], dict[str, Any]] = _no_models
    prepare_data: Callable[[StageParts], None] = _nothing
    template_checks: bool = False  # the doctor's pre-flight checks of rendered conversations (sft)


def trainer_kwargs(parts: StageParts) -> dict[str, Any]:
    """The keyword arguments every stage's trainer takes (datasets, collator, callbacks, reliability)."""
    cfg = parts.cfg
    return {
        "model": parts.model,
        "args": parts.args,
        "train_dataset": parts.data.train,
        "eval_dataset": parts.data.eval,
        "data_collator": get_stage(cfg.method.stage).collator(cfg, parts.tokenizer),
        "processing_class": parts.tokenizer,
        "callbacks": parts.callbacks,
        "loraplus_lr_ratio": cfg.method.loraplus_lr_ratio,
        "optimizer_config": cfg.optimizer,
        "skip_nonfinite_steps": cfg.train.skip_nonfinite_steps,
    }


def _registry() -> dict[str, Stage]:
    from lmforge.train.stages import distill, dpo, grpo, kto, ppo, pt, rm, sft

    stages = (pt.STAGE, sft.STAGE, rm.STAGE, dpo.STAGE, kto.STAGE, ppo.STAGE, grpo.STAGE, distill.STAGE)
    return {stage.name: stage for stage in stages}


def stage_names() -> tuple[str, ...]:
    return tuple(_registry())


def get_stage(name: str) -> Stage:
    stages = _registry()
    if name not in stages:
        raise LmforgeError(
            f"stage {name!r} is not available in this version of lmforge", f"use one of: {', '.join(stages)}"
        )
    return stages[name]
