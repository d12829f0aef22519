"""What an export starts from: the base model and template of the run that trained the adapter.

``lmforge export adapter_name_or_path=saves/run export_dir=out`` needs no ``model_name_or_path``:
the run's ``run_config.yaml`` names the base it trained on (and its template, which the Modelfile
translates), and peft's ``adapter_config.json`` names it too. Without either, the export would
silently merge into the default built-in model, so a LoRA run whose base cannot be found is refused.
Keys the user sets win over the run's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lmforge.config import RunConfig
from lmforge.errors import LmforgeError
from lmforge.models.builtin import is_builtin

RUN_KEYS = ("template", "default_system")  # taken from the run unless set


@dataclass(frozen=True)
class ExportSource:
    cfg: RunConfig  # base model (and template) filled in from the run
    run_dir: Path | None  # the last adapter's folder when lmforge trained it (has run_config.yaml)
    run_config: dict[str, Any] | None


def resolve_source(cfg: RunConfig) -> ExportSource:
    adapters = [Path(a) for a in cfg.model.adapter_name_or_path or []]
    for adapter in adapters:
        _check_adapter_dir(adapter)
    last = adapters[-1] if adapters else None
    run_config = _read_run_config(last) if last else None
    if not adapters or cfg.explicitly_set("model_name_or_path"):
        return ExportSource(_with_run_keys(cfg, run_config), last if run_config else None, run_config)
    first_run = _read_run_config(adapters[0]) or {}
    base = _find_base(adapters[0], first_run)
    model = cfg.model.model_copy(update={"model_name_or_path": base})
    return ExportSource(_with_run_keys(cfg.model_copy(update={"model": model}), run_config),
                        last if run_config else None, run_config)  # fmt: skip


def _check_adapter_dir(adapter: Path) -> None:
    if (adapter / "adapter_config.json").is_file():
        return
    if (adapter / "config.json").is_file():
        raise LmforgeError(
            f"adapter_name_or_path {adapter} holds a full model (a full or freeze run's output), not an adapter",
            f"export it as the model: model_name_or_path={adapter} and no adapter_name_or_path",
        )
    raise LmforgeError(
        f"adapter_name_or_path {adapter} has no adapter_config.json", "point it at a LoRA run's output_dir"
    )


def _read_run_config(folder: Path) -> dict[str, Any] | None:
    path = folder / "run_config.yaml"
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise LmforgeError(f"{path} is not valid YAML: {err}", "set model_name_or_path explicitly") from None
    return data if isinstance(data, dict) else None


def _find_base(adapter: Path, run_config: dict[str, Any]) -> str:
    """The first base the run names that exists here: run_config.yaml's, then adapter_config.json's."""
    named = []
    for source, value in (
        ("run_config.yaml", run_config.get("model_name_or_path")),
        ("adapter_config.json", _adapter_base(adapter)),
    ):
        if not value:
            continue
        named.append(f"{source} names {value}")
        if is_builtin(str(value)) or (Path(str(value)).expanduser() / "config.json").is_file():
            return str(value)
        if Path(str(value)).expanduser().suffix == ".gguf" and Path(str(value)).expanduser().is_file():
            return str(value)
    found = "; ".join(named) if named else "neither run_config.yaml nor adapter_config.json names one"
    raise LmforgeError(
        f"cannot find the base model of the LoRA adapter {adapter} ({found}, not found here)",
        "set model_name_or_path to the model the adapter was trained on",
    )


def _adapter_base(adapter: Path) -> str | None:
    try:
        return json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (OSError, json.JSONDecodeError):
        return None


def _with_run_keys(cfg: RunConfig, run_config: dict[str, Any] | None) -> RunConfig:
    """The run's template and default system, unless the export's config sets them."""
    if not run_config:
        return cfg
    update = {k: run_config[k] for k in RUN_KEYS if k in run_config and not cfg.explicitly_set(k)}
    if not update:
        return cfg
    return cfg.model_copy(update={"data": cfg.data.model_copy(update=update)})
