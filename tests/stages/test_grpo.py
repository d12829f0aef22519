"""stage grpo end to end from `lmforge train` on a tiny model with LoRA: with an exact-match reward
the mean reward rises over a fixed number of steps, and a SIGKILL after a checkpoint followed by
--resume logs the uninterrupted run's losses and rewards (same prompts, same samples: seeded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from kill_resume import train_until_killed

from lmforge.config import build_config
from lmforge.train.run import run_training

WORDS = ["red", "blue", "green", "cat"]  # one token each in SmolLM2's vocabulary
PROMPTS = [f"Say a word, number {i}." for i in range(8)]


def _peaked_model(tokenizer: Any, out: Path) -> Path:
    """A tiny random Llama whose (untied) LM head is set so that after each prompt it answers one of
    WORDS, a quarter each, then ends its turn: a group of samples holds the rewarded word some of the
    time, which GRPO's group-relative advantage needs. The head rows are fitted to the model's own
    mean hidden states after a prompt and after a word (least norm, so small changes of the states
    move the logits little); each word's row also gets its own direction orthogonal to both, so
    training can tell the words' logits apart."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmforge.data.templates import get_template

    torch.manual_seed(0)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=2048)  # fmt: skip
    model = LlamaForCausalLM(LlamaConfig(**shape, tie_word_embeddings=False, **ids))
    template = get_template("chatml", tokenizer)
    words = [tokenizer.convert_tokens_to_ids(word) for word in WORDS]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompts = [template.encode_prompt(tokenizer, [{"role": "user", "content": p, "tool_calls": None}]) for p in PROMPTS]
    contexts = prompts + [[*p, w] for p in prompts for w in words]
    with torch.no_grad():
        hidden = torch.stack([model.model(input_ids=torch.tensor([c])).last_hidden_state[0, -1] for c in contexts])
        means = torch.stack([hidden[: len(prompts)].mean(0), hidden[len(prompts) :].mean(0)])
        targets = torch.tensor([[12.0] * len(words) + [0.0], [0.0] * len(words) + [14.0]])  # word, then end
        rows = torch.linalg.lstsq(means, targets).solution.T  # (5, hidden), the least-norm fit
        null = torch.linalg.svd(means).Vh[2:]  # directions orthogonal to both mean states
        rows[: len(words)] += torch.nn.functional.normalize(torch.randn(len(words), len(null)) @ null, dim=-1)
        model.lm_head.weight.zero_()
        model.lm_head.weight[[*words, end]] = rows
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def warm_model(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    return _peaked_model(tokenizer, tmp_path_factory.mktemp("grpo-peaked"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("grpo-data")
    (folder / "words.json").write_text(json.dumps([{"instruction": p, "output": "blue"} for p in PROMPTS]))
    (folder / "dataset_info.json").write_text(json.dumps({"words": {"file_name": "words.json"}}))
    return folder


def _flat(model: Path, data_dir: Path, out: Path, **keys: Any) -> dict[str, Any]:
    return {
        "model_name_or_path": str(model), "stage": "grpo", "dataset": "words", "dataset_dir": str(data_dir),
        "template": "chatml", "cutoff_len": 64, "output_dir": str(out), "per_device_train_batch_size": 8,
        "num_generations": 4, "max_completion_length": 3, "learning_rate": 5e-3, "max_steps": 8,
        "logging_steps": 1, "save_steps": 4, "preprocessing_num_workers": 1, "lr_scheduler_type": "constant",
        "seed": 0, "finetuning_type": "lora", "lora_rank": 8, "reward_funcs": "exact_match", "plot_loss": False,
        **keys,
    }  # fmt: skip


def _log(out: Path) -> dict[int, dict[str, Any]]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return {row["step"]: row for row in rows if "loss" in row}


def test_grpo_reward_rises_and_a_killed_run_resumes_to_the_same_losses(
    warm_model: Path, data_dir: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    run_training(build_config(_flat(warm_model, data_dir, reference)))
    expected = _log(reference)
    rewards = [expected[step]["rewards/exact_match/mean"] for step in sorted(expected)]
    assert rewards[0] == 0.25  # step 1 samples the starting model: 8 of 32 answers are "blue"
    assert sum(rewards[-4:]) / 4 > rewards[0] + 0.3, rewards
    assert (reference / "adapter_model.safetensors").is_file()
    assert expected[1]["tokens_per_sec"] > 0  # prompts and sampled answers are counted

    out = tmp_path / "killed"
    train_until_killed(_flat(warm_model, data_dir, out), tmp_path / "grpo.yaml", checkpoint=4)
    run_training(build_config({**_flat(warm_model, data_dir, out), "resume_from_checkpoint": True}))
    resumed = _log(out)
    assert sorted(resumed) == sorted(expected)
    for step in range(5, 9):
        for key in ("loss", "rewards/exact_match/mean", "completions/mean_length"):
            assert resumed[step][key] == pytest.approx(expected[step][key], abs=1e-5), (step, key)
