"""Where labels are trained: prompts masked, responses trained, history masking, truncation at cutoff_len.

Token ids are the real SmolLM2 ids under the chatml template (the same ids tests/templates pins).
"""

from __future__ import annotations

from lmforge.data.pipeline import build_datasets
from lmforge.data.processors import encode_supervised, pretrain_batch, split_budget

M = -100
TWO_TURNS = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]
P1 = [1, 9690, 198, 6077, 5453, 30, 2, 198, 1, 4093, 198, 26843, 2, 198, 1, 520, 9531, 198]
R1 = [19556, 17, 2, 198]  # "Hello!<|im_end|>\n"
P2 = [1, 4093, 198, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198]
R2 = [36, 2, 198]  # "4<|im_end|>\n"


def _pairs(tokenizer, chatml):
    pairs = chatml.encode_turns(tokenizer, TWO_TURNS, system="Be brief.")
    assert pairs == [(P1, R1), (P2, R2)]
    return pairs


def test_multi_turn_trains_every_response_and_masks_prompts(tokenizer, chatml):
    input_ids, labels = encode_supervised(_pairs(tokenizer, chatml), 2048)
    assert input_ids == P1 + R1 + P2 + R2
    assert labels == [M] * 18 + R1 + [M] * 13 + R2


def test_train_on_prompt_trains_every_token(tokenizer, chatml):
    input_ids, labels = encode_supervised(_pairs(tokenizer, chatml), 2048, train_on_prompt=True)
    assert labels == input_ids == P1 + R1 + P2 + R2


def test_mask_history_trains_only_last_turn(tokenizer, chatml):
    input_ids, labels = encode_supervised(_pairs(tokenizer, chatml), 2048, mask_history=True)
    assert input_ids == P1 + R1 + P2 + R2
    assert labels == [M] * (18 + 4 + 13) + R2


def test_mask_history_with_train_on_prompt_trains_last_prompt_and_response(tokenizer, chatml):
    _, labels = encode_supervised(_pairs(tokenizer, chatml), 2048, mask_history=True, train_on_prompt=True)
    assert labels == [M] * (18 + 4) + P2 + R2


def test_split_budget_keeps_the_response_where_it_can():
    assert split_budget(100, 10, 50) == (40, 10)  # short response: kept whole, prompt cut
    assert split_budget(10, 100, 50) == (10, 40)  # short prompt: kept whole, response cut
    assert split_budget(60, 40, 50) == (30, 20)  # both long: proportional shares
    assert split_budget(5, 5, 50) == (5, 5)


def test_truncation_at_cutoff_len_cuts_prompt_before_response(tokenizer, chatml):
    input_ids, labels = encode_supervised(_pairs(tokenizer, chatml), 20)
    assert input_ids == P1[:16] + R1  # the second turn does not fit at all
    assert labels == [M] * 16 + R1


def test_truncation_with_mask_history_keeps_the_last_turn(tokenizer, chatml):
    input_ids, labels = encode_supervised(_pairs(tokenizer, chatml), 20, mask_history=True)
    assert input_ids == P1[:4] + P2 + R2  # old history gives way first
    assert labels == [M] * 17 + R2


def test_alpaca_file_masks_prompt_exactly(tokenizer, chatml, make_cfg, write_json, data_home, tmp_path):
    write_json(tmp_path / "a.json", [{"instruction": "Hi", "input": "", "output": "Hello!"}])
    cfg = make_cfg(dataset=str(tmp_path / "a.json"), dataset_dir=str(tmp_path))
    row = build_datasets(cfg, tokenizer, chatml).train[0]
    prompt = [1, 4093, 198, 26843, 2, 198, 1, 520, 9531, 198]  # <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n
    assert row["input_ids"] == prompt + R1
    assert row["labels"] == [M] * len(prompt) + R1
    assert tokenizer.decode([t for t in row["labels"] if t != M]) == "Hello!<|im_end|>\n"


def test_sharegpt_file_multi_turn_labels(tokenizer, chatml, make_cfg, write_json, data_home, tmp_path):
    convo = [
        {"from": "human", "value": m["content"]} if m["role"] == "user" else {"from": "gpt", "value": m["content"]}
        for m in TWO_TURNS
    ]
    write_json(tmp_path / "s.json", [{"conversations": [{"from": "system", "value": "Be brief."}, *convo]}])
    for mask_history, expected in ((False, [M] * 18 + R1 + [M] * 13 + R2), (True, [M] * 35 + R2)):
        cfg = make_cfg(dataset=str(tmp_path / "s.json"), dataset_dir=str(tmp_path), mask_history=mask_history)
        row = build_datasets(cfg, tokenizer, chatml).train[0]
        assert row["input_ids"] == P1 + R1 + P2 + R2
        assert row["labels"] == expected


def test_pretrain_appends_eos_and_chunks_long_texts(tokenizer):
    out = pretrain_batch({"text": ["Hello world", "a b c d e f g"]}, tokenizer=tokenizer, cutoff_len=4)
    eos = tokenizer.eos_token_id
    first = tokenizer("Hello world", add_special_tokens=False)["input_ids"] + [eos]
    second = tokenizer("a b c d e f g", add_special_tokens=False)["input_ids"] + [eos]
    assert out["input_ids"] == [first] + [second[i : i + 4] for i in range(0, len(second), 4)]
    assert out["labels"] == out["input_ids"]
