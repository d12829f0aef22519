"""``lmforge api`` with a reward model (stage rm) answers LLaMA-Factory's POST /v1/score/evaluation
with the scores plain transformers + peft give, and refuses generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from lmforge.config import build_config
from lmforge.train.run import run_training

PAIRS = [{"instruction": f"Question number {i}: will you help me?", "chosen": "Yes, gladly.",
          "rejected": "No. Never. Go away."} for i in range(8)]  # fmt: skip


def test_score_route_serves_the_trained_reward_model(tiny_model_dir: Path, tmp_path: Path, tokenizer: Any) -> None:
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from lmforge.infer.api_schemas import ApiSettings
    from lmforge.infer.api_server import ServerThread, create_app
    from lmforge.infer.scoring import build_scorer

    data = tmp_path / "pairs.json"
    data.write_text(json.dumps(PAIRS))
    out = tmp_path / "rm"
    common = {"model_name_or_path": str(tiny_model_dir), "stage": "rm", "template": "chatml", "cutoff_len": 48}
    run_training(build_config({**common, "dataset": str(data), "output_dir": str(out), "max_steps": 6,
                               "per_device_train_batch_size": 4, "learning_rate": 5e-3, "plot_loss": False,
                               "preprocessing_num_workers": 1}))  # fmt: skip
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": PAIRS[0]["instruction"]}, {"role": "assistant", "content": answer}],
            chat_template=(out / "chat_template.jinja").read_text(), tokenize=False,
        )
        for answer in (PAIRS[0]["chosen"], PAIRS[0]["rejected"])
    ]  # fmt: skip
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    plain = PeftModel.from_pretrained(base, out).eval()
    with torch.no_grad():
        rows = [tokenizer(text, add_special_tokens=False, return_tensors="pt") for text in texts]
        expected = [float(plain(**row).logits[0, 0]) for row in rows]

    scorer = build_scorer(build_config({**common, "adapter_name_or_path": str(out)}))
    server = ServerThread(create_app(scorer, ApiSettings())).start()
    try:
        body = {"model": str(tiny_model_dir), "messages": texts}
        answer = httpx.post(f"{server.url}/v1/score/evaluation", json=body, timeout=60)
        chat = httpx.post(f"{server.url}/v1/chat/completions", json={"model": str(tiny_model_dir),
                          "messages": [{"role": "user", "content": "Hi"}]}, timeout=60)  # fmt: skip
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert reply["object"] == "score.evaluation" and reply["model"] == str(tiny_model_dir)
    assert reply["scores"] == pytest.approx(expected, abs=1e-5)  # merged on load: float rounding only
    assert reply["scores"][0] > reply["scores"][1]
    assert chat.status_code == 400 and "/v1/score/evaluation" in chat.json()["error"]["message"]
