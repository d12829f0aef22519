"""OpenAI's presence and frequency penalties: the formula on fixed logits, then the engine's greedy
answer against a step-by-step reference on the tiny model."""

from __future__ import annotations

import torch

from lmforge.infer.params import SamplingParams
from lmforge.infer.sampling import apply_presence_frequency_penalty, next_token

LOGITS = torch.tensor([1.0, 2.0, 3.0, 0.5])
ANSWER = torch.tensor([2, 2, 1])  # token 2 twice, token 1 once, tokens 0 and 3 never


def test_penalties_subtract_presence_once_and_frequency_per_occurrence():
    penalised = apply_presence_frequency_penalty(LOGITS, ANSWER, presence=0.5, frequency=1.0)
    assert penalised.tolist() == [1.0, 0.5, 0.5, 0.5]  # 2 - (0.5 + 1), 3 - (0.5 + 2)
    assert apply_presence_frequency_penalty(LOGITS, ANSWER, presence=-1.0, frequency=0.0).tolist() == [
        1.0, 3.0, 4.0, 0.5,
    ]  # fmt: skip
    assert apply_presence_frequency_penalty(LOGITS, ANSWER, 0.0, 0.0) is LOGITS  # neutral: untouched
    rows = apply_presence_frequency_penalty(torch.stack([LOGITS, LOGITS]), torch.tensor([[2], [3]]), 0.0, 1.0)
    assert rows.tolist() == [[1.0, 2.0, 2.0, 0.5], [1.0, 2.0, 3.0, -0.5]]  # counts per row


def test_penalties_change_the_greedy_choice():
    seen = torch.empty(0, dtype=torch.long)
    assert next_token(LOGITS, SamplingParams(), seen, generated=ANSWER) == 2
    assert next_token(LOGITS, SamplingParams(frequency_penalty=1.0), seen, generated=ANSWER) == 0


def test_engine_applies_penalties_over_the_answer_like_a_step_by_step_reference(tiny_engine):
    prompt = tiny_engine.encode_chat([{"role": "user", "content": "Count to ten."}])
    params = SamplingParams(max_new_tokens=10, presence_penalty=2.0, frequency_penalty=2.0)
    answer = tiny_engine.generate(prompt, params).token_ids
    plain = tiny_engine.generate(prompt, SamplingParams(max_new_tokens=10)).token_ids
    ids, reference = list(prompt), []
    with torch.inference_mode():
        for _ in range(10):
            logits = tiny_engine.model(torch.tensor([ids])).logits[0, -1].float()
            logits = apply_presence_frequency_penalty(logits, torch.tensor(reference, dtype=torch.long), 2.0, 2.0)
            reference.append(int(logits.argmax()))
            ids.append(reference[-1])
    assert answer == reference
    assert len(set(plain)) < len(plain) and answer != plain  # the plain answer repeats; the penalised differs
