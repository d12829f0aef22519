"""LLaMA-Factory keys that are not ours: aliases, neutral values, and refusals with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmforge.config import build_config, load_config
from lmforge.config.llamafactory import rules
from lmforge.config.method import IMPLEMENTED_STAGES
from lmforge.config.schema import KEY_TO_GROUP
from lmforge.config.training_args import _static_names
from lmforge.errors import LmforgeError


@pytest.mark.parametrize(("theirs", "ours"), [(True, False), (False, True)])
def test_disable_gradient_checkpointing_is_the_inverse_of_ours(theirs: bool, ours: bool) -> None:
    cfg = build_config({"disable_gradient_checkpointing": theirs})
    assert cfg.train.gradient_checkpointing is ours
    assert "disable_gradient_checkpointing" not in cfg.to_flat()  # run_config.yaml holds our name


def test_renamed_keys_set_ours() -> None:
    cfg = build_config({"efficient_packing": True, "dataset_map_batch_size": 64, "swanlab_name": "r1"})
    assert (cfg.data.neat_packing, cfg.data.preprocessing_batch_size) == (True, 64)
    assert cfg.trackers.swanlab_run_name == "r1"


def test_values_lmforge_honours_anyway_are_accepted() -> None:
    flat = {"use_unsloth": False, "use_fast_tokenizer": True, "rope_scaling": None, "loraplus_lr_embedding": "1e-6"}
    assert build_config(flat).to_flat() == build_config({}).to_flat()


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ({"use_unsloth": True}, "use_unsloth: true cannot be honoured: Unsloth is not supported"),
        ({"use_fast_tokenizer": False}, "lmforge always loads the fast"),
        ({"rope_scaling": "linear"}, "rope_scaling: linear cannot be honoured: RoPE scaling is not supported yet"),
        ({"disable_gradient_checkpointing": "maybe"}, r"'disable_gradient_checkpointing' has invalid value 'maybe'"),
        ({"dataset_map_batch_size": "x"}, r"'dataset_map_batch_size' \(lmforge's preprocessing_batch_size\)"),
    ],
)
def test_llamafactory_keys_lmforge_cannot_honour_are_refused_with_the_reason(flat: dict, message: str) -> None:
    with pytest.raises(LmforgeError, match=message):
        build_config(flat)


@pytest.mark.parametrize("key", [key for key, rule in rules().items() if rule.stages and key not in KEY_TO_GROUP])
def test_keys_of_stages_not_implemented_yet_name_the_stage(key: str) -> None:
    stages = " / ".join(rules()[key].stages)
    with pytest.raises(LmforgeError, match=rf"{key} belongs to stage {stages}, which is not implemented yet"):
        build_config({key: 1})


def test_an_alias_that_contradicts_our_key_is_refused() -> None:
    with pytest.raises(LmforgeError, match="disable_gradient_checkpointing: true contradicts gradient_checkpointing"):
        build_config({"gradient_checkpointing": True, "disable_gradient_checkpointing": True})
    cfg = build_config({"gradient_checkpointing": False, "disable_gradient_checkpointing": True})
    assert cfg.train.gradient_checkpointing is False


def test_the_command_line_wins_over_the_file_across_alias_and_key(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("disable_gradient_checkpointing: true\n")
    assert load_config(path, ["gradient_checkpointing=true"]).train.gradient_checkpointing is True
    path.write_text("gradient_checkpointing: true\n")
    assert load_config(path, ["--disable_gradient_checkpointing"]).train.gradient_checkpointing is False


def test_refused_llamafactory_key_on_the_command_line_names_the_override() -> None:
    with pytest.raises(LmforgeError, match=r"^command line \(--use_unsloth\): use_unsloth: true cannot be honoured"):
        load_config(None, ["--use_unsloth"])


def test_the_table_is_disjoint_from_our_keys() -> None:
    assert set(rules()) & set(KEY_TO_GROUP) == set(), "a key that became a field must leave llamafactory_keys.yaml"


def test_training_arguments_lmforge_cannot_run_are_taken_before_the_pass_through() -> None:
    assert {"deepspeed", "use_liger_kernel"} <= set(_static_names())
    assert build_config({"deepspeed": "ds_z2"}).train.extra["deepspeed"] == "ds_z2"  # docs/distributed.md
    cfg = build_config({"use_liger_kernel": True})
    assert cfg.model.enable_liger_kernel is True and "use_liger_kernel" not in cfg.train.extra


def test_every_rule_is_complete() -> None:
    for key, rule in rules().items():
        kinds = [rule.alias is not None, rule.refuse is not None, bool(rule.stages)]
        assert kinds.count(True) == 1, key
        assert rule.alias is None or rule.alias in KEY_TO_GROUP, key
        assert not rule.accept or rule.refuse, key  # accepted values come with the reason for the others
        assert not rule.stages or not set(rule.stages) <= set(IMPLEMENTED_STAGES), f"{key}: its stage exists now"
