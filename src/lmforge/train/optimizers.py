"""The memory-saving optimizers (docs/optimizers.md), built for ``LmforgeTrainer.create_optimizer``.

``build_optimizer(trainer, cfg.optimizer)`` returns None for the standard choice (transformers
builds AdamW, 8-bit AdamW and every other ``optim`` name itself), else one of:

- GaLore / APOLLO: the libraries' optimizer classes with our parameter groups. transformers 5.23
  has ``optim: galore_adamw`` too, but its handler passes only the learning rate (weight_decay,
  Adam betas and eps are dropped) and puts frozen weights in the groups; here the projected group
  is the trainable linear weights of ``galore_target``, the rest keep AdamW with the usual
  decay/no-decay split. Layer-wise: one optimizer per weight stepped in a post-accumulate-grad
  hook, behind transformers' ``LayerWiseDummyOptimizer`` (its ``get_scheduler`` then gives each
  its own schedule).
- Muon (torch.optim.Muon) for the 2-D hidden matrices, AdamW for embeddings, head, norms and
  biases, as one optimizer (``MuonWithAdamW``) so the scheduler, checkpoints and accelerate see one.
  Muon's learning rate is scaled to match AdamW's update RMS (``match_rms_adamw``, Moonlight),
  so one ``learning_rate`` serves both.
- BAdam (train/badam.py) and LOMO/AdaLomo (train/lomo.py).

The projectors GaLore and APOLLO keep in their state are Python objects, which transformers'
``torch.load(weights_only=True)`` refuses on resume; ``_ProjectorStateHooks`` stores them as plain
tensors and numbers in the checkpoint and rebuilds them on load, so resume is exact.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from lmforge.config.optim import GALORE_BASES, LOMO_OPTIMS, OptimizerConfig, chosen_optimizer
from lmforge.errors import LmforgeError


def build_optimizer(trainer: Any, config: OptimizerConfig | None) -> torch.optim.Optimizer | None:
    """The optimizer ``config`` (and ``trainer.args.optim``) ask for; None = transformers' own choice."""
    config = config or OptimizerConfig()
    switch = chosen_optimizer(config)
    if trainer.args.optim in LOMO_OPTIMS:
        from lmforge.train.lomo import build_lomo

        return build_lomo(trainer)
    if switch in ("use_galore", "use_apollo"):
        return _low_rank_optimizer(trainer, config, galore=switch == "use_galore")
    if switch == "use_muon":
        return _muon_optimizer(trainer)
    if switch == "use_badam":
        from lmforge.train.badam import build_badam

        return build_badam(trainer, config)
    return None


def adam_kwargs(args: Any) -> dict[str, Any]:
    return {"lr": args.learning_rate, "betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon}


def decay_groups(trainer: Any, params: list[tuple[str, nn.Parameter]], **extra: Any) -> list[dict[str, Any]]:
    """transformers' split: weight decay on weights, none on biases and norms."""
    decay_names = set(trainer.get_decay_parameter_names(trainer.model))
    decay = [p for n, p in params if n in decay_names]
    no_decay = [p for n, p in params if n not in decay_names]
    groups = [
        {"params": decay, "weight_decay": trainer.args.weight_decay, **extra},
        {"params": no_decay, "weight_decay": 0.0, **extra},
    ]
    return [g for g in groups if g["params"]]


def trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def low_rank_targets(model: nn.Module, targets: list[str]) -> set[str]:
    """Names of the linear weights GaLore/APOLLO project: ``all`` = every linear layer but the output head."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = set()
    for module_name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or module is head or not module.weight.requires_grad:
            continue
        if "all" in targets or any(module_name == t or module_name.endswith("." + t) for t in targets):
            names.add(f"{module_name}.weight")
    if not names:
        raise LmforgeError(
            f"no trainable linear layer matches the low-rank target {targets}",
            "use all, or module names such as q_proj,v_proj",
        )
    return names


def _low_rank_optimizer(trainer: Any, config: OptimizerConfig, *, galore: bool) -> torch.optim.Optimizer:
    args, model = trainer.args, trainer.model
    if galore:
        cls = getattr(importlib.import_module("galore_torch"), GALORE_BASES[args.optim])
        projection = {
            "rank": config.galore_rank,
            "update_proj_gap": config.galore_update_interval,
            "scale": config.galore_scale,
            "proj_type": config.galore_proj_type,
        }
        targets, layerwise = config.galore_target, config.galore_layerwise
        kwargs: dict[str, Any] = {"lr": args.learning_rate}
        if args.optim == "adafactor":  # a fixed learning rate, as transformers' adafactor
            kwargs.update(scale_parameter=False, relative_step=False, warmup_init=False)
        elif "8bit" in args.optim:  # galore_torch's 8-bit AdamW defaults to optim_bits=32
            kwargs.update(adam_kwargs(args), optim_bits=8)
        else:
            kwargs.update(adam_kwargs(args), no_deprecation_warning=True)
    else:
        cls = importlib.import_module("apollo_torch").APOLLOAdamW
        projection = {
            "rank": config.apollo_rank,
            "update_proj_gap": config.apollo_update_interval,
            "scale": config.apollo_scale,
            "proj": config.apollo_proj,
            "proj_type": config.apollo_proj_type,
            "scale_type": config.apollo_scale_type,
        }
        targets, layerwise = config.apollo_target, config.apollo_layerwise
        kwargs = {**adam_kwargs(args), "scale_front": config.apollo_scale_front}
    target_names = low_rank_targets(model, targets)
    params = trainable(model)
    projected = [(n, p) for n, p in params if n in target_names]
    groups = decay_groups(trainer, [(n, p) for n, p in params if n not in target_names])
    groups += [{**g, **projection} for g in decay_groups(trainer, projected)]
    if layerwise:
        return _layerwise(cls, groups, kwargs)
    optimizer = cls(groups, **kwargs)
    _ProjectorStateHooks.register(optimizer)
    return optimizer


def _layerwise(cls: type, groups: list[dict[str, Any]], kwargs: dict[str, Any]) -> torch.optim.Optimizer:
    """One optimizer per weight, stepped (and zeroed) as soon as its gradient is complete: the full
    gradient of the model never exists at once. transformers' dummy optimizer stands in for the
    Trainer; ``get_scheduler`` attaches a schedule to each per-weight optimizer."""
    from transformers.trainer_pt_utils import LayerWiseDummyOptimizer

    optimizer_dict: dict[nn.Parameter, torch.optim.Optimizer] = {}
    for group in groups:
        settings = {k: v for k, v in group.items() if k != "params"}
        for param in group["params"]:
            optimizer_dict[param] = cls([{"params": [param], **settings}], **kwargs)

    def step_now(param: nn.Parameter) -> None:
        if param.grad is not None:
            optimizer_dict[param].step()
            optimizer_dict[param].zero_grad()

    for param in optimizer_dict:
        param.register_post_accumulate_grad_hook(step_now)
    return LayerWiseDummyOptimizer(optimizer_dict=optimizer_dict, lr=kwargs["lr"])


class _ProjectorStateHooks:
    """Checkpoint GaLore/APOLLO projector objects as plain values (weights_only loads accept them).

    Only the numbers and tensors are saved (torch's loader would mangle strings inside per-weight
    state); the class and ``proj_type`` come back from the parameter group on load.
    """

    KEY = "lmforge_projector"

    @classmethod
    def register(cls, optimizer: torch.optim.Optimizer) -> None:
        optimizer.register_state_dict_post_hook(cls.to_plain)
        optimizer.register_load_state_dict_post_hook(cls.from_plain)

    @classmethod
    def to_plain(cls, optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
        packed = {}
        for index, state in state_dict["state"].items():
            projector = state.get("projector")
            if projector is not None:
                plain = {k: v for k, v in vars(projector).items() if not isinstance(v, str)}
                state = {**state, "projector": {cls.KEY: 1, **plain}}
            packed[index] = state
        return {**state_dict, "state": packed}

    @classmethod
    def from_plain(cls, optimizer: torch.optim.Optimizer) -> None:
        for group in optimizer.param_groups:
            for param in group["params"]:
                plain = optimizer.state.get(param, {}).get("projector")
                if isinstance(plain, dict) and plain.pop(cls.KEY, None):
                    projector_cls = cls.projector_class(group)
                    projector = projector_cls.__new__(projector_cls)
                    projector.__dict__.update(plain, proj_type=group["proj_type"])
                    optimizer.state[param]["projector"] = projector

    @staticmethod
    def projector_class(group: dict[str, Any]) -> type:
        if "proj" not in group:  # GaLore
            return importlib.import_module("galore_torch.galore_projector").GaLoreProjector
        if group["proj"] == "random":
            return importlib.import_module("apollo_torch.random_projector").GradientProjector
        return importlib.import_module("apollo_torch.svd_projector").GaLoreProjector


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon on the 2-D hidden matrices, AdamW on everything else, stepped together.

    ``param_groups`` is the two optimizers' groups (the same dicts), so a scheduler's learning rate
    reaches both; the state dict holds both states.
    """

    def __init__(self, muon: torch.optim.Optimizer, adamw: torch.optim.Optimizer) -> None:
        self.muon, self.adamw = muon, adamw
        params = [p for opt in (muon, adamw) for g in opt.param_groups for p in g["params"]]
        super().__init__([{"params": params}], dict(adamw.defaults))
        self.param_groups = [*muon.param_groups, *adamw.param_groups]

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none)
        self.adamw.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
        self.param_groups = [*self.muon.param_groups, *self.adamw.param_groups]  # loading made new dicts

    def state_tensors(self) -> list[Any]:
        return [self.muon.state, self.adamw.state]


def muon_parameters(model: nn.Module) -> set[int]:
    """ids of the weights Muon orthogonalises: 2-D, not the input embedding nor the output head."""
    skip = set()
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, getter)() if hasattr(model, getter) else None
        if module is not None and getattr(module, "weight", None) is not None:
            skip.add(id(module.weight))
    # By name too: a peft-wrapped trainable copy of the embedding (modules_to_save) is another tensor.
    by_name = ("embed", "lm_head")
    return {
        id(p) for n, p in trainable(model) if p.ndim == 2 and id(p) not in skip and not any(k in n for k in by_name)
    }


def _muon_optimizer(trainer: Any) -> torch.optim.Optimizer:
    args, model = trainer.args, trainer.model
    hidden = muon_parameters(model)
    params = trainable(model)
    muon = torch.optim.Muon(
        [p for _, p in params if id(p) in hidden],
        lr=args.learning_rate,
        weight_decay=args.weight_decay,
        adjust_lr_fn="match_rms_adamw",
    )
    rest = [(n, p) for n, p in params if id(p) not in hidden]
    adamw = torch.optim.AdamW(decay_groups(trainer, rest), **adam_kwargs(args))
    return MuonWithAdamW(muon, adamw)
