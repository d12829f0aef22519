"""Train/serve parity on the built-in SmolLM2: the prompt the server builds is the prompt training
built, and ``chat --query``, the API and plain transformers answer alike. Also: a served LoRA
adapter changes the answers."""

from __future__ import annotations

import torch

from lmforge.cli import main

CONVERSATION = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome."},
]
QUESTION = "What is the capital of France?"


def test_served_prompt_equals_training_prompt(builtin_engine, tokenizer):
    turns = builtin_engine.template.encode_turns(tokenizer, CONVERSATION)
    (p1, r1), (p2, _) = turns
    assert builtin_engine.encode_chat(CONVERSATION[:1]) == p1
    assert builtin_engine.encode_chat(CONVERSATION[:3]) == p1 + r1 + p2
    assert (
        builtin_engine.encode_chat(CONVERSATION[:1], "Be brief.")
        == builtin_engine.template.encode_turns(tokenizer, CONVERSATION[:2], system="Be brief.")[0][0]
    )


def test_chat_query_api_and_transformers_answer_alike(builtin_engine, builtin_dir, server_factory, capsys):
    model = builtin_engine.model
    ids = builtin_engine.tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )["input_ids"]
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=24)
    reference = builtin_engine.tokenizer.decode(out[0, ids.size(1) :], skip_special_tokens=True).strip()
    assert "Paris" in reference

    start_server, make_client = server_factory
    server = start_server(builtin_engine)
    try:
        reply = make_client(server, "unused").chat.completions.create(
            model=builtin_engine.model_name,
            messages=[{"role": "user", "content": QUESTION}],
            temperature=0,
            max_tokens=24,
        )
    finally:
        server.stop()
    assert reply.choices[0].message.content == reference
    assert reply.usage.prompt_tokens == ids.size(1)

    code = main(
        ["chat", f"--model_name_or_path={builtin_dir}", "--do_sample=false", "--max_new_tokens=24", "--query", QUESTION]
    )
    assert code == 0
    assert capsys.readouterr().out == reference + "\n"


def test_lora_adapter_changes_the_answers(tiny_model_dir, tiny_engine, engine_factory, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, lora)
    peft_model.save_pretrained(tmp_path / "adapter")

    prompt = tiny_engine.encode_chat([{"role": "user", "content": QUESTION}])
    ids = torch.tensor([prompt])
    with torch.no_grad():
        expected = peft_model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=12
        )
    engine = engine_factory(tiny_model_dir, adapter_name_or_path=[str(tmp_path / "adapter")])
    try:
        adapted = engine.generate(prompt)
    finally:
        engine.close()
    assert adapted.token_ids != tiny_engine.generate(prompt).token_ids
    assert adapted.token_ids == expected[0, len(prompt) :].tolist()[: len(adapted.token_ids)]
