"""stage sft: supervised fine-tuning on conversations, loss on the assistant's tokens only.

Rows: ``input_ids`` / ``labels`` (data/processors.py decides the labels); padding collator (or
packed rows); ``LmforgeTrainer`` computes the LM head at trained positions only. The template's
pre-flight checks run on the rendered conversations before any weight loads.
"""

from __future__ import annotations

from typing import Any

from lmforge.data.encoders import SUPERVISED
from lmforge.train.stages import Stage, StageParts, trainer_kwargs


def padding_collator(cfg: Any, tokenizer: Any) -> Any:
    from lmforge.data.collator import build_collator

    return build_collator(cfg, tokenizer)


def causal_lm_trainer(parts: StageParts) -> Any:
    """The trainer of pt and sft: next-token loss, normalised by the trained tokens of the whole
    accumulated batch."""
    from lmforge.eval.token_accuracy import trainer_metric_kwargs
    from lmforge.train.trainer import LmforgeTrainer

    return LmforgeTrainer(
        **trainer_kwargs(parts),
        sparse_logits=parts.cfg.train.sparse_logits,
        **trainer_metric_kwargs(parts.cfg),  # compute_accuracy (eval/token_accuracy.py)
    )


STAGE = Stage(
    name="sft",
    encoding=SUPERVISED,
    collator=padding_collator,
    build_trainer=causal_lm_trainer,
    template_checks=True,
)
