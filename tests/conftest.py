"""Shared fixtures: the real SmolLM2 tokenizer, tiny random Llama models built on it, and an
environment that keeps every tool's files inside the test's temporary folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SCRATCH = Path(tempfile.mkdtemp(prefix="lmforge-tests-"))
os.environ.setdefault("MPLCONFIGDIR", str(_SCRATCH / "mpl"))
os.environ.setdefault("GRADIO_TEMP_DIR", str(_SCRATCH / "gradio"))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_DATASETS_CACHE", str(_SCRATCH / "hf-datasets"))

REPO = Path(__file__).resolve().parents[1]
TINY_LLAMA = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=49152,
    tie_word_embeddings=True,
    max_position_embeddings=2048,
)


@pytest.fixture(scope="session")
def builtin_dir() -> Path:
    """The converted built-in model directory (converted once per machine, then cached)."""
    from lmforge.models.builtin import builtin_model_dir

    return builtin_model_dir()


@pytest.fixture(scope="session")
def tokenizer(builtin_dir: Path):
    from lmforge.config.model import ModelConfig
    from lmforge.models.tokenizer import load_tokenizer

    return load_tokenizer(ModelConfig(model_name_or_path=str(builtin_dir)))


def make_tiny_model_dir(path: Path, tokenizer, seed: int = 0) -> Path:
    """A 3.2M-parameter random Llama on the real tokenizer, saved as a model directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        **TINY_LLAMA,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A saved tiny random model directory, shared by the session (treat it as read-only)."""
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-model"), tokenizer)


@pytest.fixture(scope="session")
def tiny_model_factory():
    """``make_tiny_model_dir`` as a fixture: ``from conftest import`` would find whichever conftest
    module pytest imported first (tests/<dir>/conftest.py shadow this one)."""
    return make_tiny_model_dir
