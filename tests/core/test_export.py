"""lmforge export: a merged model directory that carries the training chat template and stops at
the end of turn, answering as the base model plus adapter does."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmforge.cli import main as lmforge
from lmforge.config import build_config
from lmforge.train.run import run_training


def test_export_merges_the_adapter_with_template_and_stop_token(
    tiny_model_dir: Path, tokenizer, tmp_path: Path
) -> None:
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"instruction": "Say hi.", "output": "Hi!"}] * 4))
    adapter = tmp_path / "adapter"
    run_training(
        build_config(
            {
                "model_name_or_path": str(tiny_model_dir), "dataset": str(data), "template": "chatml",
                "output_dir": str(adapter), "max_steps": 2, "learning_rate": 1e-2, "plot_loss": False,
                "template_checks": "off",
            }
        )
    )  # fmt: skip
    merged = tmp_path / "merged"
    args = ["export", f"model_name_or_path={tiny_model_dir}", f"adapter_name_or_path={adapter}"]
    assert lmforge([*args, f"export_dir={merged}"]) == 0

    saved = AutoTokenizer.from_pretrained(merged)
    conversation = [{"role": "user", "content": "Say hi."}]
    assert saved.chat_template == AutoTokenizer.from_pretrained(adapter).chat_template
    assert saved.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False).startswith(
        "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"
    )
    eos = json.loads((merged / "generation_config.json").read_text())["eos_token_id"]
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])

    from peft import PeftModel

    ids = torch.tensor([saved.apply_chat_template(conversation, add_generation_prompt=True, return_dict=False)])
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), adapter)
    exported = AutoModelForCausalLM.from_pretrained(merged)
    torch.testing.assert_close(exported(ids).logits, reference(ids).logits, atol=1e-4, rtol=1e-4)

    before = sorted(p.name for p in merged.iterdir())
    assert lmforge([*args, f"export_dir={merged}"]) == 1  # not empty: refused
    assert sorted(p.name for p in merged.iterdir()) == before
    (merged / "notes.txt").write_text("mine")  # overwrite replaces an export, never the user's files
    assert lmforge([*args, f"export_dir={merged}", "overwrite_output_dir=true"]) == 1
    assert sorted(p.name for p in merged.iterdir()) == sorted([*before, "notes.txt"])
