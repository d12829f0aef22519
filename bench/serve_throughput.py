"""Serving throughput: aggregate generated tokens/s of ``lmforge api`` at concurrency 1, 4 and 16,
against one-at-a-time ``model.generate`` measured in the same run, plus p50 time to first token.

Run: ``.venv/bin/python bench/serve_throughput.py [--max-tokens 64] [--rounds 2] [key=value ...]``
(config overrides; default: the built-in SmolLM2-135M-Instruct, fp32 on CPU, greedy). Requests go
through the real HTTP server with the official ``openai`` client, streamed, so TTFT includes
queueing, prefill and transport.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from lmforge.config import load_config
from lmforge.infer.api_schemas import ApiSettings
from lmforge.infer.api_server import ServerThread, create_app
from lmforge.infer.engine import build_engine

TOPICS = ["the sea", "a dragon", "Paris", "winter", "a robot", "coffee", "the moon", "a library",
          "mountains", "a cat", "trains", "music", "a garden", "the desert", "rain", "chess"]  # fmt: skip


def questions(count: int) -> list[str]:
    return [f"Write a short story about {TOPICS[i % len(TOPICS)]} (version {i // len(TOPICS)})." for i in range(count)]


def one_at_a_time(engine, prompts: list[list[int]], max_tokens: int) -> float:
    """tokens/s of plain transformers greedy generation, one prompt after another."""
    tokens, start = 0, time.perf_counter()
    eos = sorted(engine.scheduler.eos_ids)
    for prompt in prompts:
        ids = torch.tensor([prompt])
        out = engine.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                    max_new_tokens=max_tokens, eos_token_id=eos)  # fmt: skip
        tokens += out.size(1) - ids.size(1)
    return tokens / (time.perf_counter() - start)


def stream_one(client, model: str, question: str, max_tokens: int) -> tuple[float, int]:
    """(seconds to the first text, generated tokens) of one streamed request."""
    start, first, tokens = time.perf_counter(), None, 0
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], max_tokens=max_tokens, temperature=0,
        stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return (first if first is not None else time.perf_counter() - start), tokens


def at_concurrency(client, model: str, concurrency: int, rounds: int, max_tokens: int) -> tuple[float, float]:
    """(aggregate tokens/s, p50 TTFT) with ``concurrency`` clients each sending ``rounds`` requests."""
    asks = questions(concurrency * rounds)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda q: stream_one(client, model, q, max_tokens), asks))
    elapsed = time.perf_counter() - start
    return sum(t for _, t in results) / elapsed, statistics.median(t for t, _ in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="requests per client")
    parser.add_argument("--baseline-prompts", type=int, default=6)
    args, overrides = parser.parse_known_args()
    from openai import OpenAI

    engine = build_engine(load_config(None, ["do_sample=false", *overrides]), max_batch_size=16, max_queue=64)
    server = ServerThread(create_app(engine, ApiSettings())).start()
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=600)
    try:
        stream_one(client, engine.model_name, "Hi", 4)  # warm-up
        prompts = [engine.encode_chat([{"role": "user", "content": q}]) for q in questions(args.baseline_prompts)]
        baseline = one_at_a_time(engine, prompts, args.max_tokens)
        print(f"model {engine.model_name}, torch threads {torch.get_num_threads()}, max_tokens {args.max_tokens}")
        print(f"one-at-a-time model.generate: {baseline:.1f} tokens/s")
        print("concurrency  tokens/s  vs one-at-a-time  p50 TTFT (s)")
        for concurrency in (1, 4, 16):
            rate, ttft = at_concurrency(client, engine.model_name, concurrency, args.rounds, args.max_tokens)
            print(f"{concurrency:>11}  {rate:8.1f}  {rate / baseline:15.2f}x  {ttft:12.2f}")
    finally:
        server.stop()
        engine.close()


if __name__ == "__main__":
    main()
