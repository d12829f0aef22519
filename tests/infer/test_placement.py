"""Inference runs on the best device and every tensor follows the model. This machine has no GPU,
so the CUDA checks are patched, and the step loop runs with ``meta`` as torch's default device:
a tensor made without naming the model's device would land on ``meta`` and fail the step."""

from __future__ import annotations

import pytest
import torch

from lmforge.models.device import best_device


@pytest.fixture
def cuda_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


def test_best_device_is_this_ranks_gpu_then_mps_then_cpu(cuda_present, monkeypatch):
    assert best_device() == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert best_device() == torch.device("cuda", 2)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # one visible GPU per process
    assert best_device() == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert best_device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert best_device() == torch.device("cpu")


def test_inference_model_is_loaded_in_bf16_and_moved_to_the_gpu(cuda_present, monkeypatch, tiny_model_dir, tokenizer):
    from lmforge.config import build_config
    from lmforge.models.loader import load_model

    moved: list[torch.device] = []
    real_to = torch.nn.Module.to

    def to(module, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if isinstance(target, torch.device | str) and torch.device(target).type == "cuda":
            moved.append(torch.device(target))  # no GPU here: record the move instead of doing it
            return module
        return real_to(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    model = load_model(build_config({"model_name_or_path": str(tiny_model_dir), "template": "chatml"}).model, tokenizer)
    assert model.dtype == torch.bfloat16
    assert moved == [torch.device("cuda", 0)]


def test_step_loop_makes_every_tensor_on_the_model_device(tiny_engine):
    from lmforge.infer.params import SamplingParams
    from lmforge.infer.scheduler import BatchScheduler, Request
    from lmforge.infer.textstream import TextStream

    model, tok = tiny_engine.model, tiny_engine.tokenizer
    scheduler = BatchScheduler(model, tok, {tok.eos_token_id}, context_len=256)
    scheduler.close()  # drive the steps from this thread, where the default device is set
    paths = [  # the vectorised greedy rows, penalised rows, and seeded sampling
        SamplingParams(max_new_tokens=4),
        SamplingParams(max_new_tokens=4, repetition_penalty=1.2, presence_penalty=0.5, frequency_penalty=0.5),
        SamplingParams(max_new_tokens=4, do_sample=True, top_k=20, top_p=0.9, seed=3),
    ]
    events: list = []
    requests = [
        Request(
            tiny_engine.encode_chat([{"role": "user", "content": "hi " * (i + 1)}]),
            params,
            events.append,
            TextStream(tok, ()),
            torch.Generator(device=model.device).manual_seed(3) if params.seed is not None else None,
        )
        for i, params in enumerate(paths)
    ]
    with torch.device("meta"), torch.inference_mode():
        scheduler._step(requests[:2])
        scheduler._step(requests[2:])  # a later arrival merges into the running batch
        while scheduler._batch is not None:
            scheduler._step([])
    finished = [e for e in events if e.finish_reason]
    assert [e.finish_reason for e in finished] == ["length"] * 3 and all(e.error is None for e in events)
    assert [e.completion_tokens for e in finished] == [4, 4, 4]
