"""LLaMA-Factory's own preference examples (qwen3_lora_reward / _dpo / _kto.yaml, their keys as
published) load as lmforge configs with the overrides the issue allows, and say the same thing."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmforge.config import load_config

COMMON = """### model
model_name_or_path: Qwen/Qwen3-4B-Instruct-2507
trust_remote_code: true

### method
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
{method}
### dataset
dataset: {dataset}
template: qwen3_nothink
cutoff_len: 2048
max_samples: 1000
preprocessing_num_workers: 16
dataloader_num_workers: 4

### output
output_dir: saves/qwen3-4b/lora/{stage}
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
save_only_model: false
report_to: none  # choices: [none, wandb, tensorboard, swanlab, mlflow]

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 5.0e-6
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
resume_from_checkpoint: null
"""
METHODS = {
    "rm": ("stage: rm\n", "dpo_en_demo"),
    "dpo": ("stage: dpo\npref_beta: 0.1\npref_loss: sigmoid  # choices: [sigmoid (dpo), orpo, simpo]\n", "dpo_en_demo"),
    "kto": ("stage: kto\npref_beta: 0.1\n", "kto_en_demo"),
}


@pytest.mark.parametrize("stage", sorted(METHODS))
def test_llamafactory_preference_example_loads_with_its_keys(stage: str, tmp_path: Path) -> None:
    method, dataset = METHODS[stage]
    path = tmp_path / f"qwen3_lora_{stage}.yaml"
    path.write_text(COMMON.format(method=method, dataset=dataset, stage=stage))
    overrides = ["model_name_or_path=smollm2-135m-instruct", "template=chatml", "max_steps=2", "cutoff_len=64"]
    cfg = load_config(path, overrides)
    assert cfg.method.stage == stage and cfg.method.finetuning_type == "lora" and cfg.method.lora_rank == 8
    assert cfg.method.pref_beta == 0.1 and cfg.method.pref_loss == "sigmoid"
    assert cfg.data.dataset == [dataset] and cfg.data.cutoff_len == 64 and cfg.train.max_steps == 2
    assert cfg.train.extra["save_only_model"] is False and cfg.train.extra["dataloader_num_workers"] == 4
