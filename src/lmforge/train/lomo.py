"""LOMO and AdaLomo (Lv et al., 2023/2024): the update is fused into backward.

Each weight is updated (and its gradient freed) as soon as its gradient is computed, so the
model's full gradient never exists; AdaLomo adds Adafactor-style factored second moments (a row
and a column vector per matrix), LOMO keeps no state at all. accelerate runs the fused backward
(``optim: lomo``/``adalomo`` makes transformers pass it the learning rate) and skips ``step()``.
The cost: no gradient accumulation, no global-norm clipping, no DDP (config/optim.py refuses
them). The trained-positions loss (train/loss.py) works unchanged: the hooks fire on whatever
graph backward walks.

lomo-optim 0.1.1's AdaLomo allocates its moments with ``.cuda()`` (fails on CPU, lands on GPU 0
whatever the model's device) and leaves them out of its state dict (a resume would restart
them). ``AdaLomoAnyDevice`` keeps the same state on each weight's device and checkpoints it.
"""

from __future__ import annotations

from typing import Any

import torch
from lomo_optim import AdaLomo, Lomo


class AdaLomoAnyDevice(AdaLomo):
    def __init__(self, model: torch.nn.Module, lr: float, weight_decay: float = 0.0, loss_scale: float = 2**10) -> None:
        # The attributes AdaLomo's methods (fuse_update, fused_backward) read, with its defaults;
        # AdaLomo.__init__ itself is skipped because of its .cuda() allocations.
        self.model, self.lr, self.loss_scale = model, lr, loss_scale
        self.weight_decay, self.do_weight_decay = weight_decay, weight_decay > 0
        self.eps, self.clip_threshold, self.decay_rate = (1e-30, 1e-3), 1.0, -0.8
        self.clip_grad_norm = self.clip_grad_value = self.clip_coef = None
        self.gather_norm, self.grad_norms, self.step_num, self.zero3_enabled = False, [], 0, False
        self.grad_func = self.fuse_update()
        self.exp_avg_sq: dict[str, torch.Tensor] = {}
        self.exp_avg_sq_row: dict[str, torch.Tensor] = {}
        self.exp_avg_sq_col: dict[str, torch.Tensor] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            zeros = {"dtype": torch.float32, "device": param.device}
            if param.ndim == 1:
                self.exp_avg_sq[name] = torch.zeros(param.shape[0], **zeros)
            else:
                self.exp_avg_sq_row[name] = torch.zeros(param.shape[0], **zeros)
                self.exp_avg_sq_col[name] = torch.zeros(param.shape[1], **zeros)
            param.register_hook(self.grad_func)
        defaults = {"lr": lr, "eps": self.eps, "weight_decay": weight_decay, "clip_grad_norm": None}
        torch.optim.Optimizer.__init__(self, model.parameters(), defaults)

    def _moments(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"exp_avg_sq": self.exp_avg_sq, "row": self.exp_avg_sq_row, "col": self.exp_avg_sq_col}

    def state_dict(self) -> dict[str, Any]:
        moments = {key: dict(values) for key, values in self._moments().items()}
        return {**super().state_dict(), "adalomo": {"step_num": self.step_num, **moments}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        saved = state_dict.pop("adalomo")
        super().load_state_dict(state_dict)
        self.step_num = saved["step_num"]
        for key, values in self._moments().items():
            for name, tensor in values.items():
                tensor.copy_(saved[key][name])

    def state_tensors(self) -> list[Any]:
        return list(self._moments().values())


def build_lomo(trainer: Any) -> torch.optim.Optimizer:
    args = trainer.args
    if args.optim == "adalomo":
        return AdaLomoAnyDevice(trainer.model, lr=args.learning_rate, weight_decay=args.weight_decay)
    return Lomo(trainer.model, lr=args.learning_rate, weight_decay=args.weight_decay)
