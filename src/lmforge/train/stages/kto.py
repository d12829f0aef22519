"""stage kto: learn from single answers labelled desirable or not (Ethayarajh et al. 2024).

With r = pi - rho (policy minus reference log-probability of the answer) and z, the batch's
estimate of KL(policy || reference) from mismatched prompt/answer rows (clamped at 0, no
gradient), each answer's loss is ``w_d (1 - s(beta (r - z)))`` when desirable and
``w_u (1 - s(beta (z - r)))`` when not (w_d, w_u = ``kto_chosen_weight``, ``kto_rejected_weight``);
``pref_ftx`` adds the SFT loss of the desirable answers. Logged per step: rewards/chosen and
rewards/rejected (mean beta r of each kind in the batch), kl.

Cost: one forward of 2n rows (answers and their mismatched rows) plus the reference's, as dpo;
a batch needs several records for the KL estimate to mean anything (per_device_train_batch_size >= 2
is advised).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

from lmforge.data.encoders import FEEDBACK
from lmforge.train.stages import Stage, StageParts, trainer_kwargs
from lmforge.train.stages.dpo import ReferenceMixin, place_frozen
from lmforge.train.stages.preference import StageMetricsMixin, check_preference, load_reference, sequence_logps
from lmforge.train.trainer import LmforgeTrainerMixin


def kto_losses(
    logratio: torch.Tensor,
    kl: torch.Tensor,
    desirable: torch.Tensor,
    *,
    beta: float,
    chosen_weight: float = 1.0,
    rejected_weight: float = 1.0,
) -> torch.Tensor:
    """Per-answer KTO losses; ``kl`` is already detached and clamped."""
    chosen = chosen_weight * (1 - torch.sigmoid(beta * (logratio - kl)))
    rejected = rejected_weight * (1 - torch.sigmoid(beta * (kl - logratio)))
    return torch.where(desirable, chosen, rejected)


def batch_kl(mismatched_logratio: torch.Tensor) -> torch.Tensor:
    """KTO's reference point: the mean log-ratio of the mismatched answers over the whole micro-batch,
    across every rank (as trl gathers it), so several processes train what one process trains with
    the same global batch; clamped at 0 and detached."""
    from lmforge.distributed import sum_across_ranks

    count = torch.tensor(float(mismatched_logratio.numel()), device=mismatched_logratio.device)
    total, count = sum_across_ranks(torch.stack([mismatched_logratio.sum().float(), count]))
    return (total / count.clamp(min=1)).clamp(min=0)


class KtoTrainer(StageMetricsMixin, ReferenceMixin, LmforgeTrainerMixin, Trainer):
    precomputed_keys = ("ref_logps", "ref_kl_logps")

    def __init__(self, *args: Any, method: Any, ref_model: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.method = method
        self.ref_model = place_frozen(ref_model, self.args.device)
        self.model_accepts_loss_kwargs = False  # a mean over answers: scaled for accumulation upstream

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        method = self.method
        logps, counts = sequence_logps(model, inputs)
        n = logps.shape[0] // 2
        ref_answer, ref_mismatched = self.reference_logps(model, inputs)
        logratio = logps[:n] - ref_answer
        kl = batch_kl(logps[n:] - ref_mismatched)
        desirable = inputs["kto_label"]
        losses = kto_losses(
            logratio, kl, desirable, beta=method.pref_beta,
            chosen_weight=method.kto_chosen_weight, rejected_weight=method.kto_rejected_weight,
        )  # fmt: skip
        if method.pref_ftx > 0:
            nll = -logps[:n] / counts[:n].clamp(min=1)
            losses = losses + method.pref_ftx * nll * desirable
        rewards = method.pref_beta * logratio.detach()
        values: dict[str, Any] = {"kl": kl}
        if desirable.any():
            values["rewards/chosen"] = rewards[desirable]
        if (~desirable).any():
            values["rewards/rejected"] = rewards[~desirable]
        self.stage_metrics.record(model.training, **values)
        loss = losses.mean()
        return (loss, {"rewards": rewards}) if return_outputs else loss


def feedback_collator(cfg: Any, tokenizer: Any) -> Any:
    from lmforge.data.collator import FeedbackCollator, pad_token_id

    return FeedbackCollator(pad_token_id(tokenizer))


def build_trainer(parts: StageParts) -> KtoTrainer:
    return KtoTrainer(**trainer_kwargs(parts), method=parts.cfg.method, ref_model=parts.models.get("reference"))


def precompute_reference(parts: StageParts) -> None:
    from lmforge.train.stages.precompute import add_reference_columns

    if parts.cfg.method.precompute_ref_log_probs:
        add_reference_columns(parts, feedback_collator(parts.cfg, parts.tokenizer), KtoTrainer.precomputed_keys)


STAGE = Stage(
    name="kto",
    encoding=FEEDBACK,
    collator=feedback_collator,
    build_trainer=build_trainer,
    check=check_preference,
    load_models=load_reference,
    prepare_data=precompute_reference,
)
