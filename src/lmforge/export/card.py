"""The model card (README.md) of an export: what it is, how it was trained, how it scored, how to run it.

From the run that trained the adapter (``run_config.yaml``, ``all_results.json``) when lmforge
trained it; an export without a run says so rather than inventing a history. The marker comment
on the first body line is how a later ``overwrite_output_dir: true`` export tells its own README
from one the user wrote (only its own is replaced).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from lmforge.config import RunConfig

CARD_MARKER = "<!-- written by lmforge export -->"


def is_export_card(path: Path) -> bool:
    try:
        return CARD_MARKER in path.read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return False


def render_card(cfg: RunConfig, run_dir: Path | None, run_config: dict[str, Any] | None, files: list[str]) -> str:
    export = cfg.export
    adapters = cfg.model.adapter_name_or_path or []
    fmt = f"GGUF ({export.export_gguf_type})" if export.export_format == "gguf" else "safetensors"
    tags = ["lmforge", "gguf" if export.export_format == "gguf" else "safetensors"]
    if adapters:
        tags.append("lora")
    front = {"library_name": "gguf" if export.export_format == "gguf" else "transformers", "tags": tags}
    datasets = (run_config or {}).get("dataset") or []
    if datasets:
        front["datasets"] = [str(d) for d in datasets]
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", CARD_MARKER, ""]
    lines += [f"# {Path(export.export_dir or 'export').name}", ""]
    lines.append(f"Exported by lmforge as {fmt} from the base model `{cfg.model.model_name_or_path}`"
                 + (f" with the adapter{'s' if len(adapters) > 1 else ''} {', '.join(f'`{a}`' for a in adapters)}"
                    " merged in." if adapters else "."))  # fmt: skip
    lines += ["", "Files: " + ", ".join(f"`{f}`" for f in sorted(files)), ""]
    lines += _training(run_dir, run_config)
    lines += _usage(cfg, files)
    return "\n".join(lines) + "\n"


def _training(run_dir: Path | None, run_config: dict[str, Any] | None) -> list[str]:
    if not run_config or run_dir is None:
        return ["## Training", "", "No lmforge run recorded (no run_config.yaml beside the adapter).", ""]
    keys = ("stage", "finetuning_type", "lora_rank", "lora_alpha", "template", "cutoff_len", "learning_rate",
            "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps")  # fmt: skip
    lines = ["## Training", "", f"Run: `{run_dir}`", ""]
    datasets = run_config.get("dataset") or []
    lines.append("Data sets: " + (", ".join(f"`{d}`" for d in datasets) if datasets else "none recorded"))
    lines += ["", "| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | {run_config[k]} |" for k in keys if run_config.get(k) is not None]
    lines += ["", "### Final metrics", ""]
    results = _read_json(run_dir / "all_results.json")
    if results:
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_number(v)} |" for k, v in sorted(results.items())]
    else:
        lines.append("No all_results.json in the run folder.")
    lines += ["", "### Training config (run_config.yaml)", "", "```yaml",
              yaml.safe_dump(run_config, sort_keys=False, allow_unicode=True).strip(), "```", ""]  # fmt: skip
    return lines


def _usage(cfg: RunConfig, files: list[str]) -> list[str]:
    if cfg.export.export_format == "gguf":
        gguf = next(f for f in files if f.endswith(".gguf"))
        return ["## Use", "", "```sh", f"llama-cli -m {gguf} -cnv",
                "ollama create mymodel -f Modelfile && ollama run mymodel", "```", ""]  # fmt: skip
    return ["## Use", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
            'model = AutoModelForCausalLM.from_pretrained("PATH")',
            'tokenizer = AutoTokenizer.from_pretrained("PATH")  # carries the training chat template',
            "```", ""]  # fmt: skip


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
