"""Merge extras: exporting from a run folder alone, the model card, QLoRA adapters merged into the
full-precision base, export dtype and device, and shard sizes written as users write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from lmforge.cli import main as lmforge
from lmforge.config import build_config
from lmforge.export.sizes import size_to_bytes
from lmforge.train.run import run_training


def _train(model_dir: Path, out: Path, data: Path, **extra) -> Path:
    data.write_text(json.dumps([{"instruction": "Say hi.", "output": "Hi!"}] * 4))
    run_training(
        build_config(
            {
                "model_name_or_path": str(model_dir), "dataset": str(data), "template": "chatml",
                "output_dir": str(out), "max_steps": 2, "learning_rate": 1e-2, "plot_loss": False,
                "template_checks": "off", "report_to": "none", **extra,
            }
        )
    )  # fmt: skip
    return out


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5 * 10**9), (0.5, 5 * 10**8), ("200MB", 200 * 10**6), ("1.5GB", 15 * 10**8), ("512MiB", 512 * 2**20),
     ("2 gib", 2 * 2**30), ("3", 3 * 10**9)],
)  # fmt: skip
def test_export_size_reads_gb_numbers_and_size_strings(value, expected) -> None:
    assert size_to_bytes(value) == expected
    assert build_config({"export_size": value}).export.shard_bytes == expected


@pytest.mark.parametrize("value", ["200 parsecs", "MB", "-1GB", "0", True])
def test_export_size_refuses_what_is_not_a_size(value) -> None:
    with pytest.raises(ValueError):
        size_to_bytes(value)


def test_export_from_a_run_folder_finds_the_base_and_writes_the_card(tiny_model_dir: Path, tmp_path: Path) -> None:
    run = _train(tiny_model_dir, tmp_path / "run", tmp_path / "d.json")
    merged = tmp_path / "merged"
    assert lmforge(["export", f"adapter_name_or_path={run}", f"export_dir={merged}", "export_dtype=bfloat16"]) == 0

    from peft import PeftModel

    ids = torch.tensor([[1, 2, 3, 400, 500]])
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), run).merge_and_unload()
    exported = AutoModelForCausalLM.from_pretrained(merged)
    assert exported.dtype == torch.bfloat16  # export_dtype honoured, in config and weights
    with safe_open(merged / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}  # noqa: SIM118
    # merged in bf16 (the base loads in export_dtype) vs merged in fp32 then cast: bf16 rounding apart
    bf16_reference = _logits(reference.to(torch.bfloat16), ids).float()
    torch.testing.assert_close(_logits(exported, ids).float(), bf16_reference, atol=2e-2, rtol=0)

    card = (merged / "README.md").read_text()
    run_config = yaml.safe_load((run / "run_config.yaml").read_text())
    results = json.loads((run / "all_results.json").read_text())
    assert "<!-- written by lmforge export -->" in card
    assert f"base model `{tiny_model_dir}`" in card and f"`{run}` merged in" in card
    assert f"Data sets: `{tmp_path / 'd.json'}`" in card
    assert f"| train_loss | {results['train_loss']:.6g} |" in card
    assert yaml.safe_dump(run_config, sort_keys=False, allow_unicode=True).strip() in card

    # overwrite_output_dir replaces the earlier export, its own README included
    assert lmforge(["export", f"adapter_name_or_path={run}", f"export_dir={merged}", "overwrite_output_dir=true"]) == 0
    assert AutoModelForCausalLM.from_pretrained(merged).dtype == torch.float32  # the base's stored dtype
    (merged / "README.md").write_text("# my own notes")  # without the marker it is the user's file
    assert lmforge(["export", f"adapter_name_or_path={run}", f"export_dir={merged}", "overwrite_output_dir=true"]) == 1
    assert (merged / "README.md").read_text() == "# my own notes"


def test_qlora_adapter_merges_into_the_full_precision_base(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    run = _train(tiny_model_dir, tmp_path / "qlora", tmp_path / "d.json", quantization_bit=4, lora_target="all")
    merged = tmp_path / "merged"
    args = ["export", f"adapter_name_or_path={run}", f"export_dir={merged}", "quantization_bit=4"]
    assert lmforge(args) == 0

    from peft import PeftModel

    config = json.loads((merged / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"
    ids = torch.tensor([[1, 2, 3, 400, 500]])
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), run)
    exported = AutoModelForCausalLM.from_pretrained(merged)
    torch.testing.assert_close(_logits(exported, ids), _logits(reference, ids), atol=1e-4, rtol=1e-4)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.allclose(_logits(exported, ids), _logits(base, ids))  # the adapter is in


def test_export_device_cpu_merges_on_the_cpu(tiny_model_dir: Path) -> None:
    from lmforge.export.load import load_for_export
    from lmforge.models.device import best_device
    from lmforge.models.tokenizer import load_tokenizer

    cfg = build_config({"model_name_or_path": str(tiny_model_dir)})
    assert cfg.export.export_device == "cpu"  # LLaMA-Factory's default
    tokenizer = load_tokenizer(cfg.model)
    assert {p.device.type for p in load_for_export(cfg, tokenizer).parameters()} == {"cpu"}
    auto = build_config({"model_name_or_path": str(tiny_model_dir), "export_device": "auto"})
    assert {p.device for p in load_for_export(auto, tokenizer).parameters()} == {best_device()}
