"""stage distill end to end from `lmforge train` on tiny models: the KL to the teacher falls with
full fine-tuning (off policy, on the data's answers) and with LoRA (on policy, on the student's own
samples); the divergences equal their definitions; a teacher with another tokenizer is refused
before any weight loads, nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from lmforge.config import build_config
from lmforge.errors import LmforgeError
from lmforge.train.run import run_training
from lmforge.train.stages.distill import divergence

ANSWERS = [("What colour is the sky?", "The sky is blue."), ("Name a pet.", "A cat is a pet.")]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any, tiny_model_dir: Path) -> Path:
    """The student's own tiny model with its MLP and attention output weights perturbed: a teacher
    that LoRA can reach (the head and norms, which LoRA leaves alone, are the student's)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.endswith(("down_proj.weight", "o_proj.weight", "up_proj.weight")):
                weight.add_(torch.randn(weight.shape, generator=generator) * 0.5)
    folder = tmp_path_factory.mktemp("distill-teacher")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("distill-data")
    rows = [{"instruction": q, "output": a} for q, a in ANSWERS * 4]
    (folder / "sft.json").write_text(json.dumps(rows))
    (folder / "dataset_info.json").write_text(json.dumps({"sft": {"file_name": "sft.json"}}))
    return folder


def _flat(student: Path, teacher: Path, data_dir: Path, out: Path, **keys: Any) -> dict[str, Any]:
    return {
        "model_name_or_path": str(student), "stage": "distill", "teacher_model": str(teacher), "dataset": "sft",
        "dataset_dir": str(data_dir), "template": "chatml", "cutoff_len": 48, "output_dir": str(out),
        "per_device_train_batch_size": 4, "learning_rate": 2e-2, "lora_rank": 16, "max_steps": 12, "logging_steps": 1,
        "preprocessing_num_workers": 1, "lr_scheduler_type": "constant", "seed": 0, "plot_loss": False, **keys,
    }  # fmt: skip


def _kl(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [row["distill_kl"] for row in rows if "loss" in row]


@pytest.mark.parametrize(
    ("keys", "saved"),
    [
        ({"finetuning_type": "full", "distill_loss": "jsd", "distill_beta": 0.3, "distill_temperature": 2.0},
         "model.safetensors"),
        ({"finetuning_type": "lora"}, "adapter_model.safetensors"),
        ({"finetuning_type": "lora", "distill_on_policy": True, "max_completion_length": 6,
          "distill_loss": "reverse_kl"}, "adapter_model.safetensors"),
    ],
    ids=["full-off-policy-jsd", "lora-off-policy-forward-kl", "lora-on-policy-reverse-kl"],
)  # fmt: skip
def test_distill_kl_to_the_teacher_falls(
    tiny_model_dir: Path, teacher_dir: Path, data_dir: Path, tmp_path: Path, keys: dict, saved: str
) -> None:
    out = tmp_path / "out"
    run_training(build_config(_flat(tiny_model_dir, teacher_dir, data_dir, out, **keys)))
    kl = _kl(out)
    assert len(kl) == 12
    assert sum(kl[-3:]) / 3 < 0.85 * sum(kl[:3]) / 3, kl
    assert (out / saved).is_file()


def test_divergences_equal_their_definitions() -> None:
    torch.manual_seed(0)
    q, p = F.log_softmax(torch.randn(3, 7), -1), F.log_softmax(torch.randn(3, 7), -1)
    forward = (p.exp() * (p - q)).sum(-1)
    reverse = (q.exp() * (q - p)).sum(-1)
    torch.testing.assert_close(divergence(q, p, "forward_kl", 0.5), forward)
    torch.testing.assert_close(divergence(q, p, "reverse_kl", 0.5), reverse)
    torch.testing.assert_close(divergence(q, p, "jsd", 0.0), forward)
    torch.testing.assert_close(divergence(q, p, "jsd", 1.0), reverse)
    m = (0.3 * p.exp() + 0.7 * q.exp()).log()
    expected = 0.3 * (p.exp() * (p - m)).sum(-1) + 0.7 * (q.exp() * (q - m)).sum(-1)
    torch.testing.assert_close(divergence(q, p, "jsd", 0.3), expected)
    assert torch.all(divergence(q, q, "jsd", 0.3).abs() < 1e-6)


def _other_tokenizer_model(folder: Path) -> Path:
    """A tiny model with a 6-token word-level tokenizer built with `tokenizers`: another vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "the": 2, "sky": 3, "is": 4, "blue": 5}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")
    config = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=len(vocab), pad_token_id=0, eos_token_id=1)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_teacher_with_another_tokenizer_is_refused_before_anything_loads(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lmforge.models.loader as loader

    teacher = _other_tokenizer_model(tmp_path / "other")
    monkeypatch.setattr(loader, "load_model", lambda *a, **k: pytest.fail("weights loaded before the check"))
    out = tmp_path / "out"
    with pytest.raises(LmforgeError, match=r"teacher_model .*other has another tokenizer than model_name_or_path"):
        run_training(build_config(_flat(tiny_model_dir, teacher, data_dir, out, finetuning_type="lora")))
    assert not out.exists()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"teacher_model": None}, "stage distill needs teacher_model"),
        ({"distill_beta": 0.2}, "distill_beta applies to distill_loss: jsd"),
        ({"max_completion_length": 8}, "max_completion_length applies to distill_on_policy: true"),
        ({"stage": "sft"}, "teacher_model applies to stage distill, and this run is stage sft"),
    ],
)
def test_distill_keys_that_would_be_ignored_are_refused(
    tiny_model_dir: Path, teacher_dir: Path, data_dir: Path, tmp_path: Path, keys: dict, message: str
) -> None:
    with pytest.raises(LmforgeError, match=message):
        run_training(build_config(_flat(tiny_model_dir, teacher_dir, data_dir, tmp_path / "out", **keys)))
