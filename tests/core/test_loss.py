"""The trained-positions loss equals the model's own loss, and so do its gradients; it runs under the
precision and wrappers of the model's own forward (bf16 autocast, peft) and honours label smoothing."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM
from transformers.trainer_pt_utils import LabelSmoother

from lmforge.config import build_config
from lmforge.train.loss import supports_trained_positions_loss, trained_positions_loss
from lmforge.train.run import run_training


def _batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    input_ids = torch.randint(0, 49152, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 8:] = 0  # right padding
    attention_mask[2, 5:] = 0
    labels = input_ids.clone()
    labels[:, :4] = -100  # prompt
    labels[1, :6] = -100  # rows start training at different positions
    labels[attention_mask == 0] = -100
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def test_loss_and_gradients_match_the_models_own(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    assert supports_trained_positions_loss(model)
    batch = _batch()
    items = (batch["labels"][:, 1:] != -100).sum()

    reference = model(**batch, num_items_in_batch=items).loss
    reference.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    loss = trained_positions_loss(model, batch, items)
    loss.backward()
    torch.testing.assert_close(loss, reference, atol=1e-6, rtol=1e-6)
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, expected[name], atol=1e-6, rtol=1e-5)


def test_a_forward_patched_onto_the_instance_takes_the_standard_path(tiny_model_dir: Path) -> None:
    from types import MethodType

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    assert supports_trained_positions_loss(model)

    def fused_forward(self, *args, **kwargs):  # as Liger patches its fused-CE forward in
        return type(self).forward(self, *args, **kwargs)

    model.forward = MethodType(fused_forward, model)
    assert not supports_trained_positions_loss(model)


def test_peft_model_gradients_match_the_standard_path(tiny_model_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    torch.manual_seed(1)
    config = LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(base, config)
    assert supports_trained_positions_loss(model)
    batch = _batch()
    items = (batch["labels"][:, 1:] != -100).sum()
    reference = model(**batch, num_items_in_batch=items).loss
    reference.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    loss = trained_positions_loss(model, batch, items)
    loss.backward()
    torch.testing.assert_close(loss, reference, atol=1e-6, rtol=1e-6)
    for name, grad in expected.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-6, rtol=1e-5)


def test_label_smoothing_matches_transformers_label_smoother(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    batch = _batch()
    items = (batch["labels"][:, 1:] != -100).sum()
    with torch.no_grad():
        outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        reference = LabelSmoother(epsilon=0.1)(outputs, batch["labels"], shift_labels=True, num_items_in_batch=items)
        smoothed = trained_positions_loss(model, batch, items, label_smoothing=0.1)
        plain = trained_positions_loss(model, batch, items)
    torch.testing.assert_close(smoothed, reference, atol=1e-6, rtol=1e-6)
    assert abs(smoothed.item() - plain.item()) > 1e-3


def _train_losses(tiny_model_dir: Path, tmp_path: Path, name: str, **overrides: object) -> list[float]:
    data = tmp_path / "d.json"
    records = [
        {"instruction": "Say hello to everyone here.", "output": "Hello there, friend!"},
        {"instruction": "Two plus two?", "output": "Two plus two is four, as everyone knows."},
    ]
    data.write_text(json.dumps(records * 2))
    out = tmp_path / name
    flat = {
        "model_name_or_path": str(tiny_model_dir), "dataset": str(data), "template": "chatml",
        "cutoff_len": 48, "output_dir": str(out), "per_device_train_batch_size": 2, "learning_rate": 1e-2,
        "max_steps": 2, "logging_steps": 1, "save_strategy": "no", "plot_loss": False,
        "lr_scheduler_type": "constant", "template_checks": "off", "preprocessing_num_workers": 1,
        **overrides,
    }  # fmt: skip
    run_training(build_config(flat))
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [row["loss"] for row in rows if "loss" in row]


def test_bf16_applies_to_the_trained_positions_loss(tiny_model_dir: Path, tmp_path: Path) -> None:
    """LoRA training with bf16: true runs under autocast on the fast path exactly as on the
    standard one; fp32 stays identical to the standard path."""
    fp32_fast = _train_losses(tiny_model_dir, tmp_path, "fp32-fast", bf16=False)
    fp32_standard = _train_losses(tiny_model_dir, tmp_path, "fp32-std", bf16=False, sparse_logits=False)
    bf16_fast = _train_losses(tiny_model_dir, tmp_path, "bf16-fast", bf16=True)
    bf16_standard = _train_losses(tiny_model_dir, tmp_path, "bf16-std", bf16=True, sparse_logits=False)
    assert len(fp32_fast) == len(bf16_fast) == 2
    for fast, standard in zip(fp32_fast, fp32_standard):
        assert abs(fast - standard) < 1e-6
    for fast, standard in zip(bf16_fast, bf16_standard):
        assert abs(fast - standard) < 2e-2  # bf16 keeps ~3 significant digits
    assert any(abs(a - b) > 1e-5 for a, b in zip(bf16_fast, fp32_fast))
