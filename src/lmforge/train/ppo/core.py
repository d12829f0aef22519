"""The PPO math on fixed tensors: nothing here knows about models or the Trainer.

Every per-token tensor is ``[rows, T]``, row ``i`` holding the answer tokens of rollout ``i``
left-aligned (position 0 = the first generated token); ``mask`` is 1 on answer tokens, 0 on the
padding after a short answer. Notation: pi = the policy being trained, pi_old = the policy that
sampled the rollout, pi_ref = the frozen reference, V = the value head, a_t = answer token t.

References: Schulman et al. 2017 (PPO, clipped objective), Schulman et al. 2016 (GAE), Ziegler et
al. 2019 (per-token KL penalty, adaptive KL controller), Ouyang et al. 2022 (InstructGPT: the same
objective with a reward model's score at the end of the answer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance over the masked entries (n/(n-1) correction, as trl did)."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    count = mask.sum()
    return var * count / (count - 1) if count > 1 else var


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """``(x - mean) / sqrt(var + 1e-8)`` over the masked entries; ``shift_mean=False`` adds the mean
    back (rewards keep their sign and level, only their scale changes). Padding stays 0."""
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def token_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards, kl), both ``[rows, T]``: the per-token KL penalty plus the score at the last token.

    ``kl_t = log pi_old(a_t) - log pi_ref(a_t)`` (the sampled-token estimate of KL(pi_old || pi_ref));
    ``r_t = -beta kl_t``, and the answer's last token also gets its score s:
    ``r_T = s - beta kl_T`` (Ziegler et al. 2019 eq. 2; Ouyang et al. 2022 eq. 2).
    """
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(1).long() - 1).clamp(min=0)
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last] += scores.to(rewards.dtype)
    return rewards, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) by generalized advantage estimation (Schulman et al. 2016):

    ``delta_t = r_t + gamma V_{t+1} - V_t`` with ``V = 0`` after the last answer token;
    ``A_t = sum_l (gamma lam)^l delta_{t+l} = delta_t + gamma lam A_{t+1}``; returns ``R_t = A_t + V_t``
    (the value head's regression target). Padding gets 0 in both.
    """
    rewards, values = rewards * mask, values * mask
    steps = rewards.shape[1]
    running = torch.zeros_like(rewards[:, 0])
    reversed_advantages = []
    for t in reversed(range(steps)):
        next_value = values[:, t + 1] if t + 1 < steps else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        reversed_advantages.append(running)
    advantages = torch.stack(reversed_advantages[::-1], dim=1) * mask
    return advantages, (advantages + values) * mask


@dataclass
class PolicyLoss:
    loss: torch.Tensor
    clip_fraction: torch.Tensor  # share of tokens where the clipped term was the larger loss
    approx_kl: torch.Tensor  # 0.5 E[(log pi - log pi_old)^2], how far this minibatch moved


def policy_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, cliprange: float
) -> PolicyLoss:
    """The clipped surrogate (Schulman et al. 2017 eq. 7), as a loss to minimise:

    ``rho_t = exp(log pi(a_t) - log pi_old(a_t))``,
    ``L = mean_t max(-A_t rho_t, -A_t clip(rho_t, 1 - eps, 1 + eps))`` over answer tokens, eps = cliprange.
    """
    log_ratio = (logprobs - old_logprobs) * mask
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    return PolicyLoss(
        loss=masked_mean(torch.maximum(unclipped, clipped), mask),
        clip_fraction=masked_mean((clipped > unclipped).float(), mask).detach(),
        approx_kl=(0.5 * masked_mean(log_ratio**2, mask)).detach(),
    )


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, cliprange_value: float
) -> torch.Tensor:
    """The clipped value objective (as in OpenAI's baselines PPO2 and trl):

    ``V_clip = V_old + clip(V - V_old, -c, c)``, ``L_V = 0.5 mean_t max((V - R)^2, (V_clip - R)^2)``,
    c = cliprange_value, R the GAE returns.
    """
    clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


class KLController:
    """The KL coefficient beta of the penalty; fixed unless adaptive."""

    def __init__(self, init_kl_coef: float, target: float | None = None, horizon: int = 10000) -> None:
        self.value = init_kl_coef
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, rows: int) -> None:
        """Adaptive (Ziegler et al. 2019): ``e = clip(KL / target - 1, -0.2, 0.2)``,
        ``beta <- beta (1 + e rows / horizon)``, KL = the batch's mean per-answer (summed) KL."""
        if self.target is None:
            return
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * rows / self.horizon


class RunningMoments:
    """Mean and standard deviation of every score seen so far (Chan et al.'s parallel update), for
    ``ppo_score_norm``: scores become ``(s - mean) / (std + eps)`` with the moments after this batch."""

    def __init__(self, mean: float = 0.0, m2: float = 0.0, count: int = 0) -> None:
        self.mean, self.m2, self.count = mean, m2, count

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 1.0

    def update(self, scores: torch.Tensor) -> None:
        values = scores.double()
        n = values.numel()
        batch_mean = float(values.mean())
        batch_m2 = float(((values - batch_mean) ** 2).sum())
        total = self.count + n
        delta = batch_mean - self.mean
        self.m2 += batch_m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    def normalize(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores - self.mean) / (self.std + torch.finfo(torch.float32).eps)
