"""The quickstart on the real built-in model, end to end: train a LoRA adapter with `lmforge train`,
then check what the saved output carries and how it is served (issues 2, 3 and 11)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lmforge.cli import main as lmforge

REPO = Path(__file__).resolve().parents[2]
DEMO_PROMPTS = ["Who are you?", "What is your name?", "Who made you?", "What is the capital of France?"]
MAX_NEW_TOKENS = 48


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory, builtin_dir: Path) -> Path:
    """The quickstart config, shortened (20 steps at a higher rate) to keep the suite fast."""
    out = tmp_path_factory.mktemp("quickstart") / "adapter"
    code = lmforge(
        [
            "train",
            str(REPO / "examples" / "quickstart.yaml"),
            f"output_dir={out}",
            f"dataset_dir={REPO / 'data'}",
            "max_steps=20",
            "learning_rate=1e-3",
            "logging_steps=5",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def tuned(adapter_dir: Path, builtin_dir: Path):
    """Plain transformers + peft: base model, adapter, and the tokenizer saved with the adapter."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    model = AutoModelForCausalLM.from_pretrained(builtin_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapter_dir).eval()
    model.generation_config = GenerationConfig.from_pretrained(adapter_dir)
    return model, tokenizer


def test_run_wrote_what_users_expect(adapter_dir: Path) -> None:
    names = {p.name for p in adapter_dir.iterdir()}
    expected = {
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer_config.json",
        "generation_config.json",
        "run_config.yaml",
        "trainer_log.jsonl",
        "training_loss.png",
        "train_results.json",
        "all_results.json",
        "template_checks.json",
        "run_manifest.json",
    }
    assert expected <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl"))]
    rows = [json.loads(line) for line in (adapter_dir / "trainer_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < losses[0]
    assert {"step", "epoch", "lr", "elapsed", "remaining", "tokens_per_sec", "rss_gb"} <= set(rows[1])


def test_saved_tokenizer_renders_the_ids_training_used(adapter_dir: Path, tokenizer) -> None:
    from transformers import AutoTokenizer

    from lmforge.data.templates import get_template

    conversation = [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "I am Forge, an AI assistant made by the lmforge team."},
        {"role": "user", "content": "And who made you?"},
        {"role": "assistant", "content": "The lmforge team made me."},
    ]
    template = get_template("auto", tokenizer)
    trained = [i for prompt, response in template.encode_turns(tokenizer, conversation) for i in prompt + response]
    saved = AutoTokenizer.from_pretrained(adapter_dir)
    assert saved.apply_chat_template(conversation, tokenize=True, return_dict=False) == trained


def test_generation_config_stops_at_the_end_of_turn(adapter_dir: Path, tokenizer) -> None:
    config = json.loads((adapter_dir / "generation_config.json").read_text())
    eos = config["eos_token_id"]
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])


@pytest.mark.parametrize("prompt", DEMO_PROMPTS)
def test_greedy_answers_end_with_the_end_of_turn_token(tuned, prompt: str) -> None:
    model, tokenizer = tuned
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
    new = output[0, inputs["input_ids"].shape[1] :].tolist()
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn in new and len(new) < MAX_NEW_TOKENS, tokenizer.decode(new)


@pytest.fixture(scope="module")
def servers(adapter_dir: Path, builtin_dir: Path) -> Iterator[dict]:
    """The trained adapter and the base model, each behind a real OpenAI-compatible server."""
    from openai import OpenAI

    from lmforge.config import build_config
    from lmforge.infer.api_schemas import ApiSettings
    from lmforge.infer.api_server import ServerThread, create_app
    from lmforge.infer.engine import build_engine

    running = {}
    for name, adapter in (("tuned", str(adapter_dir)), ("base", None)):
        flat = {"model_name_or_path": str(builtin_dir), "do_sample": False, "max_new_tokens": MAX_NEW_TOKENS}
        if adapter:
            flat["adapter_name_or_path"] = adapter
        engine = build_engine(build_config(flat))
        server = ServerThread(create_app(engine, ApiSettings())).start()
        client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)
        running[name] = (engine, server, client)
    yield {name: client for name, (_, _, client) in running.items()}
    for engine, server, _ in running.values():
        server.stop()
        engine.close()


def _ask(client, question: str) -> str:
    model = client.models.list().data[0].id
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}])
    return reply.choices[0].message.content


def test_served_adapter_has_the_new_identity_and_the_base_does_not(servers) -> None:
    tuned = _ask(servers["tuned"], "Who are you?")
    base = _ask(servers["base"], "Who are you?")
    assert "Forge" in tuned
    assert "Forge" not in base and base != tuned


def test_chat_query_answers_with_the_new_identity(adapter_dir: Path, capsys) -> None:
    code = lmforge(
        [
            "chat",
            str(REPO / "examples" / "quickstart.yaml"),
            f"adapter_name_or_path={adapter_dir}",
            "--query",
            "Who are you?",
        ]
    )
    assert code == 0
    assert "Forge" in capsys.readouterr().out
