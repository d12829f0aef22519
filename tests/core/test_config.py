"""Config: LLaMA-Factory keys, overrides, pass-through, and errors that name the key and the fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lmforge.config import build_config, load_config, parse_overrides
from lmforge.config.reference import GROUP_TITLES, render_markdown
from lmforge.config.schema import GROUPS
from lmforge.config.training_args import _static_names
from lmforge.errors import LmforgeError

REPO = Path(__file__).resolve().parents[2]


def test_flat_yaml_keys_route_to_groups(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("stage: sft\nlora_rank: 16\ndataset: identity, alpaca_demo\ncutoff_len: 512\n")
    cfg = load_config(path)
    assert cfg.method.lora_rank == 16
    assert cfg.data.dataset == ["identity", "alpaca_demo"]
    assert cfg.data.cutoff_len == 512


def test_grouped_sections_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("method:\n  lora_rank: 4\ntrain:\n  learning_rate: 0.001\n")
    cfg = load_config(path)
    assert (cfg.method.lora_rank, cfg.train.learning_rate) == (4, 0.001)


def test_cli_overrides_in_both_spellings() -> None:
    assert parse_overrides(["lora_rank=4", "--cutoff_len", "128", "--do_eval", "--seed=7"]) == {
        "lora_rank": 4,
        "cutoff_len": 128,
        "do_eval": True,
        "seed": 7,
    }


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("lora_rank: 16\n")
    assert load_config(path, ["lora_rank=2"]).method.lora_rank == 2


def test_other_training_arguments_pass_through() -> None:
    cfg = build_config({"dataloader_num_workers": 2, "torch_compile": False})
    assert cfg.train.extra == {"dataloader_num_workers": 2, "torch_compile": False}
    assert cfg.to_flat()["dataloader_num_workers"] == 2


def test_unknown_key_names_the_closest_valid_one() -> None:
    with pytest.raises(LmforgeError, match=r"unknown key 'lora_rnak'.*did you mean 'lora_rank'"):
        build_config({"lora_rnak": 8})


def test_wrong_type_names_key_and_value() -> None:
    with pytest.raises(LmforgeError, match=r"'cutoff_len' has invalid value 'long'"):
        build_config({"cutoff_len": "long"})


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ({"finetuning_type": "full", "use_dora": True}, "use_dora needs finetuning_type: lora"),
        ({"finetuning_type": "freeze", "loraplus_lr_ratio": 16}, "loraplus_lr_ratio needs finetuning_type: lora"),
        ({"bf16": True, "fp16": True}, "bf16 and fp16 are both on"),
        ({"interleave_probs": [0.5, 0.5], "dataset": ["a", "b"]}, "interleave_probs needs mix_strategy"),
        ({"use_dora": True, "pissa_init": True}, "use_dora and pissa_init cannot be combined"),
    ],
)
def test_conflicting_keys_say_what_to_change(flat: dict, message: str) -> None:
    with pytest.raises(LmforgeError, match=message):
        build_config(flat)


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("stage: sft\nlora_rank: [1, 2\n")
    with pytest.raises(LmforgeError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_config(path)


def test_static_training_argument_names_match_installed_transformers() -> None:
    import transformers

    installed = {f.name for f in dataclasses.fields(transformers.TrainingArguments) if f.init}
    assert set(_static_names()) == installed, "regenerate src/lmforge/config/training_args.txt"


def test_every_config_group_has_a_title_in_the_reference() -> None:
    assert set(GROUPS) - set(GROUP_TITLES) == set(), "add the group to GROUP_TITLES in config/reference.py"


def test_config_reference_doc_is_in_sync() -> None:
    assert (REPO / "docs" / "config.md").read_text() == render_markdown(), "run `make docs`"


def test_every_issue_key_is_in_the_schema() -> None:
    required = """model_name_or_path adapter_name_or_path template trust_remote_code stage do_train
    finetuning_type lora_rank lora_alpha lora_dropout lora_target additional_target use_rslora use_dora
    pissa_init loraplus_lr_ratio create_new_adapter freeze_trainable_layers freeze_trainable_modules dataset
    dataset_dir eval_dataset cutoff_len max_samples val_size train_on_prompt mask_history packing
    neat_packing mix_strategy interleave_probs streaming buffer_size preprocessing_num_workers
    overwrite_cache tokenized_path output_dir overwrite_output_dir per_device_train_batch_size
    gradient_accumulation_steps learning_rate num_train_epochs max_steps lr_scheduler_type warmup_steps
    warmup_ratio weight_decay max_grad_norm optim logging_steps save_steps save_total_limit save_strategy
    resume_from_checkpoint seed bf16 fp16 pure_bf16 gradient_checkpointing flash_attn plot_loss report_to
    ddp_timeout""".split()
    flat = build_config({}).to_flat()
    assert [key for key in required if key not in flat] == []


def test_yaml_booleans_become_word_choices() -> None:
    assert build_config({"template_checks": False}).data.template_checks == "off"
