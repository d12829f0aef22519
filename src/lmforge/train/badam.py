"""BAdam (Luo et al., 2024): block coordinate descent, Adam on one block of layers at a time.

Only the active block (one decoder layer by default; embeddings, head and final norm stay
frozen, as in the paper) has gradients, fp32 master copies and Adam moments, so optimizer
memory is about 1/L of AdamW's for L layers. Blocks take turns every ``badam_switch_interval``
optimizer steps, in ``badam_switch_mode`` order; each switch starts the new block's moments
from zero (the method's design). The base optimizer is transformers' ``optim`` choice.

badam 1.4's ``BlockOptimizer`` checkpoints only the base optimizer's state, so a resumed run would
restart at the first block with moments for the wrong weights (and, since the scheduler's learning
rate lives on the wrapper's groups, at the schedule's first rate for a step). ``ResumableBlockOptimizer``
also saves which block is active, the step count and the learning rate, and on load re-activates
that block before the moments are restored: resume is exact.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from badam import BlockOptimizer
from transformers import Trainer

from lmforge.config.optim import OptimizerConfig
from lmforge.train.optimizers import decay_groups, trainable


class ResumableBlockOptimizer(BlockOptimizer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._active: dict[str, Any] = {}
        super().__init__(*args, **kwargs)
        # BlockOptimizer binds state_dict to the base optimizer's on the instance; ours adds the block.
        del self.state_dict

    def switch_trainable_params(self, verbose: int | None = None) -> None:
        """As upstream (whose default verbose=1 prints at every switch), remembering what it activates."""
        self._active = {"block": self.current_block_idx, "order": list(getattr(self, "block_order", []))}
        super().switch_trainable_params(verbose)

    def state_dict(self) -> dict[str, Any]:
        # The scheduler sets the learning rate on our groups; the base groups get it at the next step.
        lrs = [group["lr"] for group in self.param_groups]
        return {
            **self.base_optimizer.state_dict(),
            "badam": {"global_step": self.global_step, "lr": lrs, **self._active},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        saved = state_dict.pop("badam")
        self.current_block_idx = saved["block"]
        if self.switch_mode == "random":
            self.block_order = list(saved["order"])
        self.switch_trainable_params()
        self.global_step = saved["global_step"]
        self.base_optimizer.load_state_dict(state_dict)
        for group, lr in zip(self.param_groups, saved["lr"]):
            group["lr"] = lr

    def state_tensors(self) -> list[Any]:
        """Adam moments of the active block plus its fp32 master copies (held by the optimizer too)."""
        return [self.base_optimizer.state, list(getattr(self, "param_idx2hp", {}).values())]


def build_badam(trainer: Any, config: OptimizerConfig) -> torch.optim.Optimizer:
    args, model = trainer.args, trainer.model
    base_cls, base_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    # BlockOptimizer gives every block group the base optimizer's default weight_decay.
    base_kwargs.setdefault("weight_decay", args.weight_decay)
    base = base_cls(decay_groups(trainer, trainable(model)), **base_kwargs)
    interval = config.badam_switch_interval
    return ResumableBlockOptimizer(
        base_optimizer=base,
        named_parameters_list=list(model.named_parameters()),
        block_prefix_list=None,
        switch_block_every=sys.maxsize if interval == -1 else interval,
        start_block=config.badam_start_block,
        switch_mode=config.badam_switch_mode,
        verbose=config.badam_verbose,
    )
