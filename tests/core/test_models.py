"""Models: resolving names, the built-in GGUF model, and which parameters each method trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lmforge.config import build_config
from lmforge.errors import LmforgeError
from lmforge.models.loader import load_model
from lmforge.models.methods import count_parameters, trainable_layer_ids
from lmforge.models.resolve import resolve_model


def _trainable_names(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_missing_model_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LmforgeError, match="model path does not exist"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(LmforgeError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_builtin_alias_resolves_to_converted_safetensors_dir(builtin_dir: Path) -> None:
    resolved = resolve_model("smollm2-135m-instruct")
    assert resolved.builtin and Path(resolved.path) == builtin_dir
    assert (builtin_dir / "model.safetensors").is_file()
    assert (builtin_dir / "tokenizer_config.json").is_file()


def test_builtin_model_answers_a_known_fact(builtin_dir: Path, tokenizer) -> None:
    cfg = build_config({"model_name_or_path": "smollm2-135m-instruct"})
    model = load_model(cfg.model, tokenizer)
    assert next(model.parameters()).dtype == torch.float32  # fp32 on CPU
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1] :])


def test_trainable_layer_ids_count_from_the_end_or_start() -> None:
    assert trainable_layer_ids(30, 2) == [28, 29]
    assert trainable_layer_ids(30, -2) == [0, 1]
    assert trainable_layer_ids(2, 5) == [0, 1]


def test_full_trains_everything(tiny_model_dir: Path, tokenizer) -> None:
    cfg = build_config({"model_name_or_path": str(tiny_model_dir), "finetuning_type": "full"})
    model = load_model(cfg.model, tokenizer, train=cfg.train, method=cfg.method)
    trainable, total = count_parameters(model)
    assert trainable == total


def test_freeze_trains_only_the_last_layer_modules(tiny_model_dir: Path, tokenizer) -> None:
    cfg = build_config(
        {
            "model_name_or_path": str(tiny_model_dir),
            "finetuning_type": "freeze",
            "freeze_trainable_layers": 1,
            "freeze_trainable_modules": "mlp",
            "freeze_extra_modules": "norm",
        }
    )
    names = _trainable_names(load_model(cfg.model, tokenizer, train=cfg.train, method=cfg.method))
    assert names == {
        "model.layers.1.mlp.gate_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
        "model.norm.weight",
    }


def test_freeze_with_unknown_module_lists_the_known_ones(tiny_model_dir: Path, tokenizer) -> None:
    cfg = build_config(
        {"model_name_or_path": str(tiny_model_dir), "finetuning_type": "freeze", "freeze_trainable_modules": "ffn"}
    )
    with pytest.raises(LmforgeError, match=r"\['ffn'\].*mlp"):
        load_model(cfg.model, tokenizer, train=cfg.train, method=cfg.method)


def test_lora_all_targets_every_linear_but_the_head(tiny_model_dir: Path, tokenizer) -> None:
    cfg = build_config({"model_name_or_path": str(tiny_model_dir), "lora_rank": 4})
    names = _trainable_names(load_model(cfg.model, tokenizer, train=cfg.train, method=cfg.method))
    assert names and all("lora_A" in n or "lora_B" in n for n in names)
    targets = {n.split(".lora_")[0].split(".")[-1] for n in names}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert len(names) == 2 * 7 * 2  # A and B, 7 linears, 2 layers


@pytest.mark.parametrize("extra", [{"use_dora": True}, {"use_rslora": True}, {"pissa_init": True, "pissa_iter": 2}])
def test_lora_variants_build(tiny_model_dir: Path, tokenizer, extra: dict) -> None:
    cfg = build_config({"model_name_or_path": str(tiny_model_dir), "lora_target": "q_proj,v_proj", **extra})
    model = load_model(cfg.model, tokenizer, train=cfg.train, method=cfg.method)
    lora_config = model.peft_config["default"]
    assert lora_config.use_dora == extra.get("use_dora", False)
    assert lora_config.use_rslora == extra.get("use_rslora", False)
    assert set(lora_config.target_modules) == {"q_proj", "v_proj"}


def test_lora_unknown_target_is_a_clear_error(tiny_model_dir: Path, tokenizer) -> None:
    cfg = build_config({"model_name_or_path": str(tiny_model_dir), "lora_target": "query"})
    with pytest.raises(LmforgeError, match="lora_target"):
        load_model(cfg.model, tokenizer, train=cfg.train, method=cfg.method)
