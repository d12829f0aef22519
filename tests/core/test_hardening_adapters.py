"""An adapter that does not fit the base model is named with the reason, not peft's raw error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from lmforge.config.method import MethodConfig
from lmforge.errors import LmforgeError
from lmforge.models.methods import apply_method


def test_adapter_of_another_base_model_is_refused_naming_its_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    other = LlamaForCausalLM(
        LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, vocab_size=49152)
    )  # fmt: skip
    adapter = tmp_path / "other-adapter"
    get_peft_model(other, LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj"])).save_pretrained(adapter)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with pytest.raises(LmforgeError, match=rf"adapter_name_or_path: cannot load the adapter in {adapter}: .*size"):
        apply_method(base, MethodConfig(finetuning_type="lora"), [str(adapter)])
