"""Fixtures for export tests on the built-in model: one LoRA adapter folder as lmforge writes it
(adapter, tokenizer carrying the chatml training template), and the merged reference model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

PROMPTS = ["What is the capital of France?", "Name a primary color.", "Write one word: hello"]


@pytest.fixture(scope="session")
def builtin_adapter(builtin_dir: Path, tmp_path_factory) -> Path:
    """A small random LoRA on the built-in model (non-zero, scaled so it still answers sensibly)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from lmforge.config import build_config
    from lmforge.models.tokenizer import build_tokenizer_and_template

    folder = tmp_path_factory.mktemp("builtin-adapter")
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(builtin_dir)
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                        init_lora_weights=False)  # fmt: skip
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.02)
    model.save_pretrained(folder)
    tokenizer, _, _ = build_tokenizer_and_template(build_config({"model_name_or_path": str(builtin_dir),
                                                                 "template": "chatml"}))  # fmt: skip
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def merged_reference(builtin_dir: Path, builtin_adapter: Path):
    """The built-in model with the adapter merged by peft directly: what every export must equal."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(builtin_dir, dtype=torch.float32)
    return PeftModel.from_pretrained(base, builtin_adapter).merge_and_unload().eval()


def greedy_hf(model, prompt_ids: list[int], max_new_tokens: int, eos: int) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=eos, pad_token_id=eos)  # fmt: skip
    return out[0, len(prompt_ids) :].tolist()
