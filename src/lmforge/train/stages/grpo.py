"""stage grpo: group-relative policy optimization (Shao et al. 2024) on trl's GRPOTrainer.

Each prompt is answered ``num_generations`` times by the live policy; an answer's advantage is its
reward (``reward_funcs``, weighed by ``reward_weights``: train/rewards.py) minus its group's mean,
divided by the group's standard deviation; the clipped policy-gradient loss is aggregated as
``grpo_loss_type`` says, with an optional KL pull ``grpo_beta`` towards the starting weights (LoRA:
the base with the adapter disabled, no second copy; full: trl loads one from model_name_or_path).

Rows (data/prompts.py): the prompt before each record's last answer, rendered with the run's
template up to the assistant header, and that answer as the reference. trl re-tokenizes the prompt
text; prepare_data checks it gets exactly the template's ids back, so generation starts from the
tokens training and serving use. Generation stops at the template's end of turn (the model's
generation_config carries it, run.py).

Batches: ``per_device_train_batch_size`` counts answers, not prompts; one generation batch (batch
x accumulation x processes answers) per optimizer step, so every checkpoint falls on a generation
boundary and a resume regenerates exactly what the uninterrupted run would have (sampling seeded:
the RNG state is in each checkpoint).

Cost per step: sampling batch x accumulation answers of up to ``max_completion_length`` tokens
(with the KV cache), one forward+backward over prompts and answers, and a reference forward when
``grpo_beta`` > 0.
"""

from __future__ import annotations

import os
from typing import Any

from lmforge.data.encoders import PROMPTS
from lmforge.errors import LmforgeError
from lmforge.train.rewards import Reward, load_reward_functions
from lmforge.train.stages import Stage, StageParts, trainer_kwargs


def check_grpo(cfg: Any) -> None:
    """The reward functions import and fit; batches hold whole groups. Before any weight loads."""
    data, train, grpo = cfg.data, cfg.train, cfg.grpo
    if not load_reward_functions(cfg):
        raise LmforgeError(
            "stage grpo needs reward_funcs", "set reward_funcs (e.g. exact_match, math, or module:function)"
        )
    for key in ("packing", "neat_packing", "streaming", "train_on_prompt", "mask_history"):
        if getattr(data, key):
            raise LmforgeError(
                f"{key} cannot be used with stage grpo: it trains on its own sampled answers", f"remove {key}"
            )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    answers = train.per_device_train_batch_size * train.gradient_accumulation_steps * world
    if answers % grpo.num_generations:
        raise LmforgeError(
            f"stage grpo: per_device_train_batch_size x gradient_accumulation_steps x processes = {answers} answers "
            f"per step is not a multiple of num_generations: {grpo.num_generations}",
            f"make it a multiple (e.g. per_device_train_batch_size: {grpo.num_generations}) or lower num_generations",
        )
    evaluates = train.eval_strategy != "no" or train.do_eval
    if evaluates and (train.per_device_eval_batch_size * world) % grpo.num_generations:
        raise LmforgeError(
            f"stage grpo: per_device_eval_batch_size {train.per_device_eval_batch_size} is not a multiple of "
            f"num_generations: {grpo.num_generations}",
            f"set per_device_eval_batch_size: {grpo.num_generations}",
        )


def check_prompts(parts: StageParts) -> None:
    """Every prompt re-tokenizes to its template ids, and references exist where a reward needs them."""
    tokenizer = parts.tokenizer
    needing = [r.name for r in load_reward_functions(parts.cfg) if r.needs_reference]
    for split, rows in (("train", parts.data.train), ("eval", parts.data.eval)):
        if rows is None:
            continue
        for index, (text, ids, reference) in enumerate(zip(rows["prompt"], rows["prompt_ids"], rows["reference"])):
            if needing and reference is None:
                raise LmforgeError(
                    f"reward_funcs: {', '.join(needing)} compares with the reference answer, but {split} prompt "
                    f"{index} has none (its record ends with a user turn)",
                    "give every record its answer (alpaca output / a last assistant turn), or use other rewards",
                )
            if tokenizer(text)["input_ids"] != ids:
                raise LmforgeError(
                    f"{split} prompt {index}: the tokenizer does not read the rendered prompt back as the "
                    "template's ids, so generation would start from other tokens than training and serving",
                    "use a template without text the tokenizer adds by itself (e.g. a bos token): template: chatml",
                )


def trl_reward(reward: Reward) -> Any:
    """Our ``fn(prompts, completions, references)`` as trl calls a reward: by keyword, with the row's columns."""

    def score(prompts: list[str], completions: list[str], reference: list[str | None] | None = None, **_: Any):
        references = list(reference) if reference is not None else [None] * len(completions)
        return reward.fn(list(prompts), list(completions), references)

    score.__name__ = reward.name  # trl logs rewards/<name>/mean and /std
    return score


def no_collator(cfg: Any, tokenizer: Any) -> None:
    return None  # GRPOTrainer batches the raw rows itself and generates from them


def build_trainer(parts: StageParts) -> Any:
    from lmforge.train.grpo_trainer import GrpoTrainer, grpo_arguments  # trl loads only for this stage

    kwargs = trainer_kwargs(parts)
    kwargs.pop("data_collator")
    kwargs["args"] = grpo_arguments(parts.cfg, parts.args)
    rewards = load_reward_functions(parts.cfg)
    return GrpoTrainer(**kwargs, reward_funcs=[trl_reward(reward) for reward in rewards])


STAGE = Stage(
    name="grpo",
    encoding=PROMPTS,
    collator=no_collator,
    build_trainer=build_trainer,
    check=check_grpo,
    prepare_data=check_prompts,
)
