"""The PPO math (train/ppo/core.py) against values worked out by hand on fixed tensors."""

from __future__ import annotations

import math

import pytest
import torch

from lmforge.train.ppo import core


def close(actual: torch.Tensor, expected: list[list[float]]) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected), rtol=0, atol=1e-5)


def test_gae_matches_the_hand_computed_advantages_and_returns() -> None:
    rewards = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 9.0]])
    values = torch.tensor([[0.5, 1.0, 1.5], [1.0, 2.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # row 2's last column is padding
    advantages, returns = core.gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # row 1: deltas 1 + .9*1 - .5 = 1.4, 0 + .9*1.5 - 1 = .35, 2 - 1.5 = .5; A = delta + .72 A_next
    # row 2: deltas 0 + .9*2 - 1 = .8, 3 - 2 = 1 (V after the last token is 0); padding stays 0
    close(advantages, [[1.9112, 0.71, 0.5], [1.52, 1.0, 0.0]])
    close(returns, [[2.4112, 1.71, 2.0], [2.52, 3.0, 0.0]])


def test_clipped_policy_loss_takes_the_larger_loss_of_each_token() -> None:
    old = torch.zeros(1, 3)
    logprobs = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))  # ratios 1.5, 0.5, 1.1
    advantages = torch.tensor([[1.0, -1.0, 2.0]])
    result = core.policy_loss(logprobs, old, advantages, torch.ones(1, 3), cliprange=0.2)
    # token 1: max(-1.5, -1.2) = -1.2; token 2: max(0.5, 0.8) = 0.8; token 3: -2.2 inside the range
    assert float(result.loss) == pytest.approx((-1.2 + 0.8 - 2.2) / 3)
    assert float(result.clip_fraction) == pytest.approx(2 / 3)
    expected_kl = 0.5 * (math.log(1.5) ** 2 + math.log(0.5) ** 2 + math.log(1.1) ** 2) / 3
    assert float(result.approx_kl) == pytest.approx(expected_kl)


def test_clipped_policy_loss_ignores_padding() -> None:
    logprobs = torch.tensor([[0.1, 5.0]])
    loss = core.policy_loss(logprobs, torch.zeros(1, 2), torch.tensor([[2.0, 100.0]]), torch.tensor([[1.0, 0.0]]), 0.2)
    assert float(loss.loss) == pytest.approx(-2.0 * math.exp(0.1))


def test_clipped_value_loss_matches_the_hand_computed_value() -> None:
    values, old = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]])
    returns = torch.tensor([[2.0, 0.0]])
    loss = core.value_loss(values, old, returns, torch.ones(1, 2), cliprange_value=0.2)
    # token 1: V_clip = 0.7: max(1, 1.69); token 2: V_clip = 0.3: max(0, 0.09)
    assert float(loss) == pytest.approx(0.5 * (1.69 + 0.09) / 2)


def test_token_rewards_put_the_score_on_the_last_answer_token_and_penalise_kl() -> None:
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, 0.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0], [-2.0, -0.5, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards, kl = core.token_rewards(torch.tensor([1.0, -1.0]), logprobs, ref, mask, kl_coef=0.1)
    close(kl, [[0.5, 0.0, -1.0], [1.0, -0.5, 0.0]])
    close(rewards, [[-0.05, 0.0, 1.1], [-0.1, -1.0 + 0.05, 0.0]])


def test_whiten_uses_masked_unbiased_moments_and_keeps_padding_zero() -> None:
    values = torch.tensor([[1.0, 2.0], [3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    close(core.whiten(values, mask), [[-1.0, 0.0], [1.0, 0.0]])
    close(core.whiten(values, mask, shift_mean=False), [[1.0, 2.0], [3.0, 0.0]])


def test_adaptive_kl_coefficient_moves_towards_the_target_by_at_most_the_clipped_error() -> None:
    above = core.KLController(0.2, target=6.0, horizon=10000)
    above.update(current_kl=12.0, rows=100)  # error clipped to +0.2
    assert above.value == pytest.approx(0.2 * 1.002)
    below = core.KLController(0.2, target=6.0, horizon=10000)
    below.update(current_kl=4.5, rows=100)  # error -0.25 clipped to -0.2
    assert below.value == pytest.approx(0.2 * 0.998)
    fixed = core.KLController(0.2)
    fixed.update(current_kl=100.0, rows=100)
    assert fixed.value == 0.2


def test_running_moments_equal_the_moments_of_all_scores_seen() -> None:
    moments = core.RunningMoments()
    moments.update(torch.tensor([1.0, 2.0, 3.0]))
    moments.update(torch.tensor([4.0, 5.0]))
    assert (moments.mean, moments.count) == (pytest.approx(3.0), 5)
    assert moments.std == pytest.approx(math.sqrt(2.5))
    assert moments.normalize(torch.tensor([3.0 + math.sqrt(2.5)])).tolist() == pytest.approx([1.0])
