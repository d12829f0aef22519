"""The engine: continuous batching gives one-at-a-time greedy answers, stop words, limits,
cancellation, a bounded queue, beam search and seeded sampling."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from lmforge.infer.params import GenerationEvent, SamplingParams
from lmforge.infer.scheduler import EngineBusyError
from lmforge.infer.textstream import TextStream

QUESTIONS = ["Hi", "What is the capital of France?", "Write a poem about the sea and the sky, please.", "2+2?"]


def _prompts(engine) -> list[list[int]]:
    return [engine.encode_chat([{"role": "user", "content": q}]) for q in QUESTIONS]


def _reference(engine, prompt: list[int], max_new_tokens: int) -> list[int]:
    """Plain transformers greedy decoding of one prompt, cut after the first end-of-turn token."""
    ids = torch.tensor([prompt])
    eos = sorted(engine.scheduler.eos_ids)
    out = engine.model.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos
    )
    return out[0, len(prompt) :].tolist()


def test_concurrent_greedy_answers_equal_one_at_a_time_and_transformers(tiny_engine):
    params = SamplingParams(max_new_tokens=12)
    prompts = _prompts(tiny_engine) * 4
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda p: tiny_engine.generate(p, params), prompts))
    alone = [tiny_engine.generate(p, params) for p in prompts[:4]]
    for i, answer in enumerate(together):
        assert answer.token_ids == alone[i % 4].token_ids
    for prompt, answer in zip(prompts[:4], alone):
        assert answer.token_ids == _reference(tiny_engine, prompt, 12)[: len(answer.token_ids)]
        assert answer.completion_tokens == len(answer.token_ids) and answer.prompt_tokens == len(prompt)


def test_max_new_tokens_ends_with_length(tiny_engine):
    answer = tiny_engine.generate(_prompts(tiny_engine)[1], SamplingParams(max_new_tokens=3))
    assert (answer.finish_reason, answer.completion_tokens) == ("length", 3)


def test_stop_word_cuts_the_answer_before_it(tiny_engine):
    prompt = _prompts(tiny_engine)[2]
    full = tiny_engine.generate(prompt, SamplingParams(max_new_tokens=12)).text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    cut = tiny_engine.generate(prompt, SamplingParams(max_new_tokens=12, stop=(stop,)))
    assert cut.finish_reason == "stop"
    assert cut.text == full[: full.index(stop)]


def test_text_stream_holds_back_a_possible_stop_word(tokenizer):
    stream = TextStream(tokenizer, ["END"])
    pieces = [stream.push(t) for t in tokenizer.encode("Hello EN", add_special_tokens=False)]
    assert "".join(pieces) == "Hello " and not stream.stopped
    assert stream.flush() == "EN"
    stream = TextStream(tokenizer, ["END"])
    text = "".join(stream.push(t) for t in tokenizer.encode("Hello ENDING", add_special_tokens=False))
    assert (text, stream.stopped) == ("Hello ", True)


def test_seeded_sampling_repeats_and_beam_search_answers(tiny_engine):
    prompt = _prompts(tiny_engine)[0]
    sampled = SamplingParams(max_new_tokens=8, do_sample=True, temperature=1.0, top_p=0.9, top_k=20, seed=7)
    assert tiny_engine.generate(prompt, sampled).token_ids == tiny_engine.generate(prompt, sampled).token_ids
    beams = tiny_engine.generate(prompt, SamplingParams(max_new_tokens=6, num_beams=2))
    assert beams.finish_reason in ("stop", "length") and 0 < beams.completion_tokens <= 6


def test_closing_a_stream_cancels_the_request(tiny_engine):
    stream = tiny_engine.stream(_prompts(tiny_engine)[2], SamplingParams(max_new_tokens=200, stop=()))
    next(stream)
    stream.close()
    answer = tiny_engine.generate(_prompts(tiny_engine)[0], SamplingParams(max_new_tokens=2))
    assert answer.completion_tokens == 2  # the engine still serves after a cancellation


def test_full_queue_raises_engine_busy(tiny_model_dir, engine_factory):
    engine = engine_factory(tiny_model_dir, max_batch_size=1, max_queue=1)
    done = threading.Event()
    try:
        prompt = _prompts(engine)[0]

        def sink(event: GenerationEvent) -> None:
            if event.finish_reason:
                done.set()

        handle = engine.submit(prompt, SamplingParams(max_new_tokens=500), sink)
        with pytest.raises(EngineBusyError):
            engine.submit(prompt, SamplingParams(max_new_tokens=1), sink)
        handle.cancel()
        assert done.wait(30)
    finally:
        engine.close()


def test_repetition_penalty_matches_transformers(tiny_engine):
    prompt = _prompts(tiny_engine)[1]
    ids = torch.tensor([prompt])
    out = tiny_engine.model.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=10, repetition_penalty=1.5,
        eos_token_id=sorted(tiny_engine.scheduler.eos_ids),
    )  # fmt: skip
    answer = tiny_engine.generate(prompt, SamplingParams(max_new_tokens=10, repetition_penalty=1.5))
    assert answer.token_ids == out[0, len(prompt) :].tolist()[: len(answer.token_ids)]


def test_vllm_backend_without_vllm_or_gpu_is_a_clear_error(tiny_model_dir):
    from lmforge.config import build_config
    from lmforge.errors import LmforgeError
    from lmforge.infer.engine import build_engine

    cfg = build_config({"model_name_or_path": str(tiny_model_dir), "infer_backend": "vllm"})
    with pytest.raises(LmforgeError, match="infer_backend: vllm needs"):
        build_engine(cfg)
