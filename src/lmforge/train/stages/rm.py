"""stage rm: a reward model, one score per conversation, trained on preference pairs.

The model is ``AutoModelForSequenceClassification`` with one output (``num_labels: 1``: the
transformers class scores the last non-padding token), so the result loads in plain transformers;
with LoRA the adapter is saved with the score head (peft ``modules_to_save``). Pairwise loss
(Bradley-Terry, Ouyang et al. 2022): ``-log s(score(c) - score(r))``. Logged per step: accuracy
(share of pairs scored the right way round), rewards/chosen, rewards/rejected, rewards/margins.
Served for scoring by ``lmforge api`` at ``POST /v1/score/evaluation``.

Cost: one forward of 2n rows per micro-batch, no reference model.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

from lmforge.data.encoders import PAIRWISE
from lmforge.train.stages import Stage, StageParts, trainer_kwargs
from lmforge.train.stages.dpo import pair_collator
from lmforge.train.stages.preference import StageMetricsMixin, check_preference
from lmforge.train.trainer import LmforgeTrainerMixin


def pairwise_scores(model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    scores = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits.squeeze(-1)
    n = scores.shape[0] // 2
    return scores[:n].float(), scores[n:].float()


class RewardTrainer(StageMetricsMixin, LmforgeTrainerMixin, Trainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False  # a mean over pairs: scaled for accumulation upstream

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        chosen, rejected = pairwise_scores(model, inputs)
        loss = -F.logsigmoid(chosen - rejected).mean()
        self.stage_metrics.record(
            model.training,
            accuracy=(chosen > rejected).float(),
            **{"rewards/chosen": chosen, "rewards/rejected": rejected, "rewards/margins": chosen - rejected},
        )
        return (loss, {"chosen_scores": chosen}) if return_outputs else loss


def build_trainer(parts: StageParts) -> RewardTrainer:
    return RewardTrainer(**trainer_kwargs(parts))


STAGE = Stage(
    name="rm",
    encoding=PAIRWISE,
    collator=pair_collator,
    build_trainer=build_trainer,
    head="seq_cls",
    check=check_preference,
)
