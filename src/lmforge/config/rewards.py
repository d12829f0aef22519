"""Rewards group: the reward functions of the online stages (grpo; ppo without a reward model).

Built-ins by name (``exact_match``, ``format``, ``length``, ``math``) or the user's own as
``module:function`` / ``path.py:function``; train/rewards.py loads and checks them before any weight
loads. Several at once are summed with ``reward_weights`` (default 1 each).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RewardsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward_funcs: list[str] | None = Field(
        None,
        description="grpo/ppo: reward functions, comma-separated: exact_match (the answer equals the reference), "
        "format (matches reward_format_pattern), length (near reward_length_target characters), math (the final "
        "number or \\boxed{} answer equals the reference's), or your own as module:function or path.py:function.",
    )
    reward_weights: list[float] | None = Field(
        None, description="grpo/ppo: one weight per reward function (default: 1 each); the reward is the weighted sum."
    )
    reward_format_pattern: str | None = Field(
        None, description="Reward format: the regular expression an answer must contain (re.search, DOTALL) to score 1."
    )
    reward_length_target: int = Field(
        200, gt=0, description="Reward length: the answer length in characters that scores 1 (linear to 0 at 0 and 2x)."
    )
