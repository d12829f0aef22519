"""Preference stages end to end on a tiny random model (rm, dpo, kto; LoRA and full): the quantity
each optimizes moves the right way on a learnable toy set, DPO starts at ln 2, LoRA DPO keeps one
copy of the weights, a reward model loads in plain transformers, and a SIGKILLed run resumes to
the uninterrupted run's losses."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from kill_resume import train_until_killed

from lmforge.config import build_config
from lmforge.train.run import run_training

# Learnable: every chosen answer agrees, every rejected one refuses.
PROMPTS = [f"Question number {i}: will you help me?" for i in range(8)]
PAIRS = [{"instruction": p, "chosen": "Yes, gladly.", "rejected": "No. Never. Go away."} for p in PROMPTS]
FEEDBACK = [
    {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": answer}], "label": label}
    for p in PROMPTS
    for answer, label in (("Yes, gladly.", True), ("No. Never. Go away.", False))
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pref-data")
    (folder / "pairs.json").write_text(json.dumps(PAIRS))
    (folder / "feedback.json").write_text(json.dumps(FEEDBACK))
    info = {
        "pairs": {"file_name": "pairs.json", "ranking": True,
                  "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}},
        "feedback": {"file_name": "feedback.json", "formatting": "sharegpt",
                     "columns": {"messages": "messages", "kto_tag": "label"},
                     "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                              "assistant_tag": "assistant"}},
    }  # fmt: skip
    (folder / "dataset_info.json").write_text(json.dumps(info))
    return folder


def _flat(model: Path, data_dir: Path, out: Path, stage: str, **keys: Any) -> dict[str, Any]:
    return {
        "model_name_or_path": str(model), "stage": stage, "dataset": "feedback" if stage == "kto" else "pairs",
        "dataset_dir": str(data_dir), "template": "chatml", "cutoff_len": 48, "output_dir": str(out),
        "per_device_train_batch_size": 4, "learning_rate": 5e-3, "max_steps": 8, "logging_steps": 1,
        "save_steps": 4, "preprocessing_num_workers": 1, "lr_scheduler_type": "constant", "seed": 0,
        "finetuning_type": "lora", **keys,
    }  # fmt: skip


def _log(out: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [row for row in rows if "loss" in row]


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(row[key] for row in rows) / len(rows)


def _assert_run_outputs(out: Path) -> None:
    for name in ("trainer_log.jsonl", "training_loss.png", "run_manifest.json"):
        assert (out / name).is_file(), name


@pytest.mark.parametrize("finetuning_type", ["lora", "full"])
def test_dpo_starts_at_ln2_and_its_margin_and_accuracy_rise(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path, finetuning_type: str
) -> None:
    out = tmp_path / "dpo"
    keys = {"learning_rate": 1e-3} if finetuning_type == "full" else {}
    run_training(build_config(_flat(tiny_model_dir, data_dir, out, "dpo", finetuning_type=finetuning_type, **keys)))
    rows = _log(out)
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at step 0
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert key in rows[0]
    assert rows[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert _mean(rows[-3:], "rewards/margins") > 0.5
    assert _mean(rows[-3:], "rewards/accuracies") == 1.0
    assert _mean(rows[-3:], "loss") < 0.45
    _assert_run_outputs(out)


def _storage_elements(*models: Any) -> int:
    """Parameter storage really held: each distinct storage counted once."""
    seen: dict[int, int] = {}
    for model in models:
        if model is None:
            continue
        for param in model.parameters():
            storage = param.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes() // param.element_size()
    return sum(seen.values())


def _dpo_trainer(cfg: Any) -> Any:
    from lmforge.data.pipeline import build_datasets
    from lmforge.models.loader import load_model
    from lmforge.models.tokenizer import build_tokenizer_and_template
    from lmforge.train.arguments import build_training_arguments
    from lmforge.train.stages import StageParts, get_stage

    stage = get_stage("dpo")
    args = build_training_arguments(cfg)
    tokenizer, template, _ = build_tokenizer_and_template(cfg)
    data = build_datasets(cfg, tokenizer, template)
    model = load_model(cfg.model, tokenizer, train=cfg.train, method=cfg.method)
    parts = StageParts(cfg, args, model, tokenizer, template, data, [], stage.load_models(cfg, tokenizer))
    stage.prepare_data(parts)
    return stage.build_trainer(parts)


def test_lora_dpo_holds_one_copy_of_the_base_weights(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    base = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model_dir).parameters())
    lora = _dpo_trainer(build_config(_flat(tiny_model_dir, data_dir, tmp_path / "a", "dpo")))
    adapter = sum(p.numel() for n, p in lora.model.named_parameters() if "lora_" in n)
    assert lora.ref_model is None
    assert _storage_elements(lora.model, lora.ref_model) == base + adapter
    full = _dpo_trainer(build_config(_flat(tiny_model_dir, data_dir, tmp_path / "b", "dpo", finetuning_type="full")))
    assert _storage_elements(full.model, full.ref_model) == 2 * base  # the count sees a second copy
    precomputed = _dpo_trainer(
        build_config(_flat(tiny_model_dir, data_dir, tmp_path / "c", "dpo", finetuning_type="full",
                           precompute_ref_log_probs=True))
    )  # fmt: skip
    assert precomputed.ref_model is None and _storage_elements(precomputed.model) == base
    assert "ref_chosen_logps" in precomputed.train_dataset.column_names


@pytest.mark.parametrize("loss", ["hinge", "ipo", "orpo", "simpo"])
def test_each_dpo_loss_raises_the_margin(tiny_model_dir: Path, data_dir: Path, tmp_path: Path, loss: str) -> None:
    out = tmp_path / loss
    run_training(build_config(_flat(tiny_model_dir, data_dir, out, "dpo", pref_loss=loss, max_steps=6, save_steps=6,
                                    plot_loss=False)))  # fmt: skip
    rows = _log(out)
    assert rows[-1]["rewards/margins"] > rows[0]["rewards/margins"]
    assert rows[-1]["loss"] < rows[0]["loss"]


@pytest.mark.parametrize("finetuning_type", ["lora", "full"])
def test_reward_model_learns_the_pairs_and_loads_in_plain_transformers(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path, tokenizer: Any, finetuning_type: str
) -> None:
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "rm"
    keys = {"learning_rate": 1e-3} if finetuning_type == "full" else {}
    run_training(build_config(_flat(tiny_model_dir, data_dir, out, "rm", finetuning_type=finetuning_type, **keys)))
    rows = _log(out)
    assert _mean(rows[-3:], "accuracy") == 1.0 and _mean(rows[-3:], "rewards/margins") > 0.5
    _assert_run_outputs(out)
    if finetuning_type == "full":
        model = AutoModelForSequenceClassification.from_pretrained(out)
    else:
        from peft import PeftModel

        adapter = json.loads((out / "adapter_config.json").read_text())
        assert adapter["task_type"] == "SEQ_CLS" and "score" in adapter["modules_to_save"]
        base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
        model = PeftModel.from_pretrained(base, out)
    tok = type(tokenizer).from_pretrained(out)
    scores = []
    for answer in (PAIRS[0]["chosen"], PAIRS[0]["rejected"]):
        conversation = [{"role": "user", "content": PAIRS[0]["instruction"]}, {"role": "assistant", "content": answer}]
        ids = tok.apply_chat_template(conversation, return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            scores.append(float(model(input_ids=ids).logits[0, 0]))
    assert scores[0] > scores[1]


FULL_PRECOMPUTED = {"finetuning_type": "full", "learning_rate": 1e-3, "precompute_ref_log_probs": True}


@pytest.mark.parametrize("keys", [{}, FULL_PRECOMPUTED], ids=["lora", "full-precomputed-reference"])
def test_kto_loss_falls(tiny_model_dir: Path, data_dir: Path, tmp_path: Path, keys: dict[str, Any]) -> None:
    out = tmp_path / "kto"
    run_training(build_config(_flat(tiny_model_dir, data_dir, out, "kto", **keys)))
    rows = _log(out)
    assert rows[0]["loss"] == pytest.approx(0.5, abs=1e-4)  # 1 - s(0) at step 0, weights 1
    assert _mean(rows[-3:], "loss") < 0.4
    assert _mean(rows[-3:], "rewards/chosen") > _mean(rows[-3:], "rewards/rejected")
    _assert_run_outputs(out)


@pytest.mark.parametrize("stage", ["rm", "dpo", "kto"])
def test_sigkill_after_checkpoint_then_resume_reproduces_the_losses(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path, stage: str
) -> None:
    keys = {"max_steps": 6, "save_steps": 3, "plot_loss": False, "per_device_train_batch_size": 2}
    reference = tmp_path / "reference"
    run_training(build_config(_flat(tiny_model_dir, data_dir, reference, stage, **keys)))
    expected = {row["step"]: row["loss"] for row in _log(reference)}

    out = tmp_path / "killed"
    train_until_killed(_flat(tiny_model_dir, data_dir, out, stage, **keys), tmp_path / "cfg.yaml", checkpoint=3)
    run_training(build_config({**_flat(tiny_model_dir, data_dir, out, stage, **keys), "resume_from_checkpoint": True}))
    resumed = {row["step"]: row["loss"] for row in _log(out)}
    assert sorted(resumed) == sorted(expected)
    for step in range(4, 7):
        assert resumed[step] == pytest.approx(expected[step], abs=1e-5), step
