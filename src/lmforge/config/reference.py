"""The config reference, generated from the schemas (docs/config.md and `lmforge config`)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lmforge.config.llamafactory import KeyRule, rules, show
from lmforge.config.schema import GROUPS

GROUP_TITLES = {
    "model": "Model",
    "data": "Data",
    "method": "Method (stage and fine-tuning type)",
    "train": "Training",
    "generate": "Generation",
    "export": "Export",
    "trackers": "Trackers",
    "optimizer": "Memory-saving optimizers (docs/optimizers.md)",
    "eval": "Evaluation (lmforge eval, do_predict)",
    "rewards": "Reward functions (stages grpo and ppo: docs/stages.md)",
    "grpo": "GRPO (stage grpo)",
    "distill": "Distillation (stage distill)",
}


def _type_name(field: FieldInfo) -> str:
    text = str(field.annotation).replace("typing.", "").replace("NoneType", "None")
    return text.replace("<class '", "").replace("'>", "")


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    return json.dumps(value) if not isinstance(value, str) else value


def _rows(schema: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    return [
        (name, _type_name(field), _default(field), field.description or "")
        for name, field in schema.model_fields.items()
        if name != "extra"
    ]


def render_text() -> str:
    lines: list[str] = []
    for group, schema in GROUPS.items():
        lines.append(f"[{GROUP_TITLES[group]}]")
        for name, type_name, default, help_text in _rows(schema):
            lines.append(f"  {name}: {type_name} = {default}")
            lines.append(f"      {help_text}")
        lines.append("")
    lines.append("Any other transformers TrainingArguments field is passed through to the trainer.")
    lines.append("LLaMA-Factory keys that are not lmforge keys (aliases, allowed values, refusals): docs/config.md.")
    return "\n".join(lines) + "\n"


# Where our default differs from LLaMA-Factory's (or transformers', which it inherits), and why.
DIFFERENT_DEFAULTS = [
    ("model_name_or_path", "required", "smollm2-135m-instruct", "everything runs offline out of the box"),
    ("template", "required", "auto", "the tokenizer's own chat template is what the model was trained with"),
    ("do_train", "false", "true", "`lmforge train` trains"),
    ("output_dir", "trainer_output", "saves/lmforge-run", "outputs land beside LLaMA-Factory's habitual saves/"),
    ("per_device_train_batch_size", "8", "1", "fits any machine; raise it deliberately"),
    ("learning_rate", "5e-5", "1e-4", "the usual LoRA rate (LoRA is the default method)"),
    ("lr_scheduler_type", "linear", "cosine", "what LLaMA-Factory's own examples use"),
    ("logging_steps", "500", "10", "a loss curve for short runs too"),
    ("plot_loss", "false", "true", "users expect the picture"),
    ("gradient_checkpointing", "on", "off", "~30% faster; turn on when memory is short"),
    ("ddp_timeout", "180000000", "1800", "a hung collective fails in 30 minutes, not 5 years"),
    ("template_checks", "—", "strict", "template mistakes stop the run before weights load"),
    ("sparse_logits", "—", "true", "same loss, less compute and memory (train/loss.py)"),
]


def render_markdown() -> str:
    out = [
        "# Config reference",
        "",
        "Generated from the schemas by `lmforge config --markdown`; a test keeps it in sync.",
        "Keys are flat in YAML (LLaMA-Factory's names); the groups below are for reading.",
        "Any other transformers `TrainingArguments` field is passed through to the trainer.",
        "",
    ]
    for group, schema in GROUPS.items():
        out += [f"## {GROUP_TITLES[group]}", "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, type_name, default, help_text in _rows(schema):
            out.append(f"| `{name}` | `{type_name}` | `{default}` | {help_text} |")
        out.append("")
    out += [
        "## Defaults that differ from LLaMA-Factory",
        "",
        "| key | LLaMA-Factory | lmforge | why |",
        "| --- | --- | --- | --- |",
    ]
    out += [f"| `{key}` | `{theirs}` | `{ours}` | {why} |" for key, theirs, ours, why in DIFFERENT_DEFAULTS]
    out += [
        "",
        "## LLaMA-Factory keys that are not lmforge keys",
        "",
        "From src/lmforge/config/llamafactory_keys.yaml: each is an alias, allowed at the values that",
        "mean what lmforge does anyway, or refused with the reason.",
        "",
        "| key | what lmforge does with it |",
        "| --- | --- |",
    ]
    out += [f"| `{key}` | {_llamafactory_rule(rule)} |" for key, rule in rules().items()]
    out.append("")
    return "\n".join(out)


def _llamafactory_rule(rule: KeyRule) -> str:
    if rule.alias is not None:
        mapping = ", ".join(f"{show(theirs)} → {show(ours)}" for theirs, ours in (rule.values or {}).items())
        return f"alias of `{rule.alias}`" + (f" ({mapping})" if mapping else "")
    if rule.stages:
        return f"refused: stage {' / '.join(rule.stages)} is not implemented yet"
    allowed = " or ".join(f"`{show(value)}`" for value in rule.accept)
    return (f"allowed as {allowed}; otherwise refused: " if allowed else "refused: ") + str(rule.refuse)
