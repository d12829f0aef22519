"""stage dpo: learn from preference pairs without a reward model (``pref_loss``).

With policy log-probabilities pi and reference log-probabilities rho of the chosen (c) and rejected
(r) answers, the implicit reward of an answer is ``beta * (pi - rho)`` and h = (pi_c - rho_c) - (pi_r - rho_r):

- sigmoid (DPO, Rafailov et al. 2023): ``-(1-eps) log s(beta h) - eps log s(-beta h)``, eps =
  ``dpo_label_smoothing`` (cDPO); exactly ln 2 at step 0, where the policy is the reference;
- hinge (SLiC): ``relu(1 - beta h)``;
- ipo (Azar et al. 2023): ``(h - 1/(2 beta))^2`` on per-token averages of the log-probabilities;
- orpo (Hong et al. 2024, reference-free): ``NLL(c) - beta log s(log odds(c) - log odds(r))`` on
  per-token averages, odds(p) = p / (1 - p);
- simpo (Meng et al. 2024, reference-free): ``-log s(beta (avg pi_c - avg pi_r) - gamma)``,
  gamma = ``simpo_gamma``.

``pref_ftx`` adds ``pref_ftx * NLL(c)`` (per-token average) to any of them. Logged per step:
rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies, logps/chosen, logps/rejected.

Cost: one forward of 2n rows per micro-batch (chosen and rejected together), plus a no-grad
reference forward unless the reference is precomputed or the loss is reference-free; a full
fine-tune without ``precompute_ref_log_probs`` holds a second copy of the weights.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

from lmforge.data.encoders import PAIRWISE
from lmforge.train.stages import Stage, StageParts, trainer_kwargs
from lmforge.train.stages.preference import (
    StageMetricsMixin,
    adapter_disabled,
    check_preference,
    load_reference,
    needs_reference,
    sequence_logps,
)
from lmforge.train.trainer import LmforgeTrainerMixin

AVERAGED_LOSSES = ("ipo", "orpo", "simpo")  # losses on per-token average log-probabilities


def preference_loss(
    loss_type: str,
    policy: tuple[torch.Tensor, torch.Tensor],
    reference: tuple[torch.Tensor, torch.Tensor] | None,
    lengths: tuple[torch.Tensor, torch.Tensor],
    *,
    beta: float,
    label_smoothing: float = 0.0,
    simpo_gamma: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-pair losses, chosen rewards, rejected rewards) from summed log-probabilities."""
    chosen, rejected = policy
    if loss_type in AVERAGED_LOSSES:
        chosen, rejected = chosen / lengths[0], rejected / lengths[1]
    if loss_type == "orpo":
        log_odds = (chosen - rejected) - (torch.log1p(-torch.exp(chosen)) - torch.log1p(-torch.exp(rejected)))
        losses = -chosen - beta * F.logsigmoid(log_odds)
        return losses, beta * chosen.detach(), beta * rejected.detach()
    if loss_type == "simpo":
        losses = -F.logsigmoid(beta * (chosen - rejected) - simpo_gamma)
        return losses, beta * chosen.detach(), beta * rejected.detach()
    assert reference is not None, "the reference log-probabilities are missing"
    ref_chosen, ref_rejected = reference
    if loss_type in AVERAGED_LOSSES:
        ref_chosen, ref_rejected = ref_chosen / lengths[0], ref_rejected / lengths[1]
    h = (chosen - ref_chosen) - (rejected - ref_rejected)
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * h)
    elif loss_type == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown preference loss {loss_type!r}")
    return losses, beta * (chosen - ref_chosen).detach(), beta * (rejected - ref_rejected).detach()


def place_frozen(model: Any, device: Any) -> Any:
    """A frozen model goes where the policy trains (quantized or device-mapped ones stay put)."""
    if model is None or getattr(model, "hf_device_map", None) or getattr(model, "hf_quantizer", None) is not None:
        return model
    return model.to(device)


class ReferenceMixin:
    """Reference log-probabilities of a batch: precomputed columns, a frozen model, or the adapter off."""

    ref_model: Any
    precomputed_keys: tuple[str, str]

    def reference_logps(self, model: Any, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        first, second = self.precomputed_keys
        if first in inputs:
            return inputs[first], inputs[second]
        with torch.no_grad():
            if self.ref_model is not None:
                logps, _ = sequence_logps(self.ref_model, inputs)
            else:
                with adapter_disabled(self.accelerator.unwrap_model(model)):  # type: ignore[attr-defined]
                    logps, _ = sequence_logps(model, inputs)
        n = logps.shape[0] // 2
        return logps[:n], logps[n:]


class DpoTrainer(StageMetricsMixin, ReferenceMixin, LmforgeTrainerMixin, Trainer):
    """transformers' Trainer with lmforge's reliability and the preference losses above."""

    precomputed_keys = ("ref_chosen_logps", "ref_rejected_logps")

    def __init__(self, *args: Any, method: Any, ref_model: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.method = method
        self.ref_model = place_frozen(ref_model, self.args.device)
        self.uses_reference = method.pref_loss not in ("orpo", "simpo")
        self.model_accepts_loss_kwargs = False  # the loss is a mean over pairs: scaled for accumulation upstream

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        method = self.method
        logps, counts = sequence_logps(model, inputs)
        n = logps.shape[0] // 2
        policy, lengths = (logps[:n], logps[n:]), (counts[:n].clamp(min=1), counts[n:].clamp(min=1))
        reference = self.reference_logps(model, inputs) if self.uses_reference else None
        losses, chosen_rewards, rejected_rewards = preference_loss(
            method.pref_loss, policy, reference, lengths, beta=method.pref_beta,
            label_smoothing=method.dpo_label_smoothing, simpo_gamma=method.simpo_gamma,
        )  # fmt: skip
        if method.pref_ftx > 0:
            losses = losses + method.pref_ftx * (-policy[0] / lengths[0])
        self.stage_metrics.record(
            model.training,
            **{
                "rewards/chosen": chosen_rewards, "rewards/rejected": rejected_rewards,
                "rewards/margins": chosen_rewards - rejected_rewards,
                "rewards/accuracies": (chosen_rewards > rejected_rewards).float(),
                "logps/chosen": policy[0].detach(), "logps/rejected": policy[1].detach(),
            },
        )  # fmt: skip
        loss = losses.mean()
        return (loss, {"chosen_rewards": chosen_rewards}) if return_outputs else loss


def build_trainer(parts: StageParts) -> DpoTrainer:
    return DpoTrainer(**trainer_kwargs(parts), method=parts.cfg.method, ref_model=parts.models.get("reference"))


def pair_collator(cfg: Any, tokenizer: Any) -> Any:
    from lmforge.data.collator import PairwiseCollator, pad_token_id

    return PairwiseCollator(pad_token_id(tokenizer))


def precompute_reference(parts: StageParts) -> None:
    """Score every pair with the reference once, before training (``precompute_ref_log_probs``)."""
    from lmforge.train.stages.precompute import add_reference_columns

    if parts.cfg.method.precompute_ref_log_probs and needs_reference(parts.cfg):
        add_reference_columns(parts, pair_collator(parts.cfg, parts.tokenizer), DpoTrainer.precomputed_keys)


STAGE = Stage(
    name="dpo",
    encoding=PAIRWISE,
    collator=pair_collator,
    build_trainer=build_trainer,
    check=check_preference,
    load_models=load_reference,
    prepare_data=precompute_reference,
)
