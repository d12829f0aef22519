"""Chat templates on the real SmolLM2 tokenizer: exact ids, turn splits, and Jinja parity."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from lmforge.data.templates import get_template, template_names, to_chat_messages
from lmforge.errors import LmforgeError

TWO_TURNS = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]
TOOLS = [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}]
TOOL_CHAT = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'},
    {"role": "tool", "content": "sunny"},
    {"role": "assistant", "content": "Sunny."},
    {"role": "user", "content": "thanks"},
]


def _flat(turns: list[tuple[list[int], list[int]]]) -> list[int]:
    return [token for prompt, response in turns for token in (*prompt, *response)]


def _ids(out) -> list[int]:
    return list(out if isinstance(out, list) else out["input_ids"])


def test_chatml_two_turns_with_system_exact_ids(tokenizer):
    turns = get_template("chatml", tokenizer).encode_turns(tokenizer, TWO_TURNS, system="Be brief.")
    assert turns == [
        (
            [1, 9690, 198, 6077, 5453, 30, 2, 198, 1, 4093, 198, 26843, 2, 198, 1, 520, 9531, 198],
            [19556, 17, 2, 198],
        ),
        ([1, 4093, 198, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198], [36, 2, 198]),
    ]
    assert [tokenizer.decode(r) for _, r in turns] == ["Hello!<|im_end|>\n", "4<|im_end|>\n"]
    assert tokenizer.decode(turns[1][0]) == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"


def test_chatml_end_of_turn_and_stop_words(tokenizer):
    template = get_template("chatml", tokenizer)
    assert template.eot_token_ids(tokenizer) == [2]
    assert template.turn_suffix(tokenizer) == "<|im_end|>\n"
    assert template.stop_words == ["<|im_end|>", "<|im_start|>"]


def test_auto_prefix_split_equals_full_render(tokenizer):
    template = get_template("auto", tokenizer)
    turns = template.encode_turns(tokenizer, TWO_TURNS)
    text = tokenizer.apply_chat_template(to_chat_messages(TWO_TURNS), tokenize=False)
    assert _flat(turns) == tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(turns[0][0]).startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert [tokenizer.decode(r) for _, r in turns] == ["Hello!<|im_end|>\n", "4<|im_end|>\n"]
    assert template.chat_template_jinja(tokenizer) == tokenizer.chat_template
    assert template.eot_token_ids(tokenizer) == [2]


@pytest.mark.parametrize("name", template_names())
@pytest.mark.parametrize("system", ["Be brief.", None])
def test_jinja_matches_encode_prompt(tokenizer, name, system):
    template = get_template(name, tokenizer)
    jinja = template.chat_template_jinja(tokenizer)
    probe = TWO_TURNS[:3]
    served = tokenizer.apply_chat_template(
        to_chat_messages(probe, system), add_generation_prompt=True, chat_template=jinja
    )
    assert _ids(served) == template.encode_prompt(tokenizer, probe, system=system)
    # the whole training sample is the Jinja render of the whole conversation
    full = tokenizer.apply_chat_template(to_chat_messages(TWO_TURNS, system), chat_template=jinja, tokenize=False)
    turns = template.encode_turns(tokenizer, TWO_TURNS, system=system)
    assert _flat(turns) == tokenizer.encode(full, add_special_tokens=False)


def test_qwen_tools_render_parse_and_jinja_parity(tokenizer):
    template = get_template("qwen", tokenizer)
    ids = template.encode_prompt(tokenizer, TOOL_CHAT, tools=json.dumps(TOOLS))
    served = tokenizer.apply_chat_template(
        to_chat_messages(TOOL_CHAT), tools=TOOLS, add_generation_prompt=True,
        chat_template=template.chat_template_jinja(tokenizer),
    )  # fmt: skip
    assert _ids(served) == ids
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in text
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert f"<|im_start|>assistant\n{call}<|im_end|>" in text
    assert "<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>" in text
    answer = '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>\n<tool_call>\n{"name": "g"}\n</tool_call>'
    assert template.parse_tool_calls(answer) == [{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {}}]
    assert template.parse_tool_calls("no calls here") is None


def test_default_system_override_and_llama2_system_in_user(tokenizer):
    template = get_template("qwen", tokenizer, default_system="Answer in French.")
    text = tokenizer.decode(template.encode_prompt(tokenizer, TWO_TURNS[:1]))
    assert text == (
        "<|im_start|>system\nAnswer in French.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    llama2 = get_template("llama2", tokenizer)
    text = tokenizer.decode(llama2.encode_prompt(tokenizer, TWO_TURNS[:1], system="S"))
    assert text == "<|im_start|>[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST]"  # bos of SmolLM2 is <|im_start|>


def test_unknown_template_lists_known_names(tokenizer):
    with pytest.raises(LmforgeError) as err:
        get_template("chatmll", tokenizer)
    message = str(err.value)
    assert "unknown template 'chatmll'" in message
    for name in ("default", "empty", "alpaca", "chatml", "qwen", "llama3", "llama2", "mistral", "gemma", "phi", "auto"):
        assert name in message


def test_auto_without_chat_template_suggests_named_template():
    tokenizer = SimpleNamespace(chat_template=None, name_or_path="base-model")
    with pytest.raises(LmforgeError, match="base-model has none.*set template to a named template"):
        get_template("auto", tokenizer)


def test_training_conversation_must_end_with_assistant(tokenizer):
    with pytest.raises(LmforgeError, match="must end with an assistant message"):
        get_template("chatml", tokenizer).encode_turns(tokenizer, TWO_TURNS[:3])


def test_custom_yaml_template_loads(tokenizer, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "templates:\n"
        "  mine:\n"
        '    user: "<|im_start|>user\\n{{content}}<|im_end|>\\n"\n'
        '    assistant_header: "<|im_start|>bot\\n"\n'
        '    assistant: "{{content}}<|im_end|>"\n'
        '    stop_words: ["<|im_end|>"]\n'
    )
    template = get_template(str(path), tokenizer)
    assert template.name == "mine"
    ((prompt, response),) = template.encode_turns(tokenizer, TWO_TURNS[:2])
    assert tokenizer.decode(prompt) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>bot\n"
    assert response == [19556, 17, 2]


def test_custom_yaml_unknown_key_is_named(tokenizer, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text('user: "{{content}}"\nassistant: "{{content}}"\nassistent_header: "A:"\n')
    with pytest.raises(LmforgeError, match=r"template bad has unknown keys \['assistent_header'\]"):
        get_template(str(path), tokenizer)
