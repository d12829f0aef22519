"""Engines and real servers for the inference tests: the tiny random model for behaviour, the
built-in SmolLM2 where a test needs meaningful text. Loaded once per session (imports and weights
cost seconds on this CPU)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

API_KEY = "test-key"


def make_engine(model_dir: Path, **keys):
    from lmforge.config import build_config
    from lmforge.infer.engine import build_engine

    batching = {k: keys.pop(k) for k in ("max_batch_size", "max_queue") if k in keys}
    flat = {"model_name_or_path": str(model_dir), "template": "chatml", "do_sample": False, "max_new_tokens": 12}
    flat.update(keys)
    return build_engine(build_config(flat), **batching)


@pytest.fixture(scope="session")
def engine_factory():
    """``make_engine`` for tests that need their own engine (close it)."""
    return make_engine


@pytest.fixture(scope="session")
def server_factory():
    """``start_server`` and ``openai_client`` for tests that need their own server (stop it)."""
    return start_server, openai_client


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path) -> Iterator:
    engine = make_engine(tiny_model_dir)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def builtin_engine(builtin_dir: Path) -> Iterator:
    engine = make_engine(builtin_dir, template="auto", max_new_tokens=24)
    yield engine
    engine.close()


def start_server(engine, **settings):
    from lmforge.infer.api_schemas import ApiSettings
    from lmforge.infer.api_server import ServerThread, create_app

    return ServerThread(create_app(engine, ApiSettings(**settings))).start()


def openai_client(server, api_key: str = API_KEY):
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}/v1", api_key=api_key, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def tiny_server(tiny_engine) -> Iterator:
    server = start_server(tiny_engine, api_key=API_KEY)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def client(tiny_server):
    return openai_client(tiny_server)
