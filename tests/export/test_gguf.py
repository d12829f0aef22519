"""GGUF export read back by its real consumer: llama.cpp (llama-cpp-python) generates the same
greedy tokens as transformers on the merged model (f32, f16), runs q8_0 (and q4_k_m), and renders
prompts with the embedded chat template into the tokens training used; transformers' own GGUF
loader reads the f32 file back to identical logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lmforge.cli import main as lmforge
from lmforge.data.templates import get_template

from .conftest import PROMPTS, greedy_hf

pytestmark = pytest.mark.slow
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def gguf_export(builtin_dir: Path, builtin_adapter: Path, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("gguf") / "smol-gguf"
    argv = ["export", f"model_name_or_path={builtin_dir}", f"adapter_name_or_path={builtin_adapter}",
            "template=chatml", "export_format=gguf", f"export_dir={target}"]  # fmt: skip
    assert lmforge(argv) == 0
    return target


@pytest.fixture(scope="module")
def more_types(gguf_export: Path, merged_reference, builtin_adapter: Path) -> dict[str, Path]:
    """f16 and q8_0 (and q4_k_m) written by the same writer from the merged model in memory."""
    from transformers import AutoTokenizer

    from lmforge.export.gguf import gguf_file_name, write_gguf

    tokenizer = AutoTokenizer.from_pretrained(builtin_adapter)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    types = ["f16", "q8_0"] + (["q4_k_m"] if _has_quantizer() else [])
    folder = gguf_export.parent / "more"
    folder.mkdir()
    return {t: write_gguf(merged_reference, tokenizer, folder / gguf_file_name(t), t, "smol", im_end) for t in types}


def _has_quantizer() -> bool:
    try:
        import llama_cpp
    except ImportError:
        return False
    return hasattr(llama_cpp, "llama_model_quantize")


def _llama(path: Path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make test builds it)")
    return llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=2, n_batch=64, verbose=False)


def _greedy_cpp(llm, prompt_ids: list[int], max_new_tokens: int, eos: int) -> list[int]:
    out: list[int] = []
    for token in llm.generate(prompt_ids, temp=0.0, top_k=1, reset=True):
        out.append(token)
        if token == eos or len(out) == max_new_tokens:
            break
    return out


def _prompts(tokenizer) -> list[list[int]]:
    template = get_template("chatml", tokenizer)
    return [template.encode_prompt(tokenizer, [{"role": "user", "content": p}]) for p in PROMPTS]


def test_export_writes_the_gguf_modelfile_and_card(gguf_export: Path) -> None:
    assert sorted(p.name for p in gguf_export.iterdir()) == ["Modelfile", "README.md", "model-f32.gguf"]
    assert "FROM ./model-f32.gguf" in (gguf_export / "Modelfile").read_text()
    assert "as GGUF (f32)" in (gguf_export / "README.md").read_text()


@pytest.mark.parametrize("gguf_type", ["f32", "f16"])
def test_llama_cpp_greedy_tokens_equal_transformers_on_the_merged_model(
    gguf_type: str, gguf_export: Path, more_types: dict[str, Path], merged_reference, tokenizer
) -> None:
    path = gguf_export / "model-f32.gguf" if gguf_type == "f32" else more_types["f16"]
    llm = _llama(path)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for ids in _prompts(tokenizer):
        expected = greedy_hf(merged_reference, ids, NEW_TOKENS, eos)
        assert _greedy_cpp(llm, ids, NEW_TOKENS, eos) == expected, tokenizer.decode(expected)


def test_embedded_chat_template_renders_the_training_tokens(gguf_export: Path, tokenizer) -> None:
    llm = _llama(gguf_export / "model-f32.gguf")
    embedded = llm.metadata["tokenizer.chat_template"]
    template = get_template("chatml", tokenizer)
    conversation = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"},
                    {"role": "user", "content": "Count to three."}]  # fmt: skip
    text = tokenizer.apply_chat_template(conversation, chat_template=embedded, add_generation_prompt=True,
                                         tokenize=False)  # fmt: skip
    assert llm.tokenize(text.encode(), add_bos=False, special=True) == template.encode_prompt(tokenizer, conversation)
    full = [*conversation, {"role": "assistant", "content": "1 2 3"}]
    text = tokenizer.apply_chat_template(full, chat_template=embedded, tokenize=False)
    turns = template.encode_turns(tokenizer, full)
    assert llm.tokenize(text.encode(), add_bos=False, special=True) == [i for p, r in turns for i in p + r]
    assert int(llm.metadata["tokenizer.ggml.eos_token_id"]) == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert llm.metadata["tokenizer.ggml.pre"] == "smollm"


def test_q8_0_loads_and_answers(more_types: dict[str, Path], tokenizer) -> None:
    llm = _llama(more_types["q8_0"])
    assert int(llm.metadata["general.file_type"]) == 7  # MOSTLY_Q8_0
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    answer = tokenizer.decode(_greedy_cpp(llm, _prompts(tokenizer)[0], NEW_TOKENS, eos))
    assert "Paris" in answer, answer


def test_q4_k_m_is_written_by_llama_cpp_quantizer(more_types: dict[str, Path], tokenizer) -> None:
    if "q4_k_m" not in more_types:
        pytest.skip("llama-cpp-python (llama.cpp's quantizer) is not installed")
    llm = _llama(more_types["q4_k_m"])
    assert int(llm.metadata["general.file_type"]) == 15  # MOSTLY_Q4_K_M
    assert more_types["q4_k_m"].stat().st_size < more_types["q8_0"].stat().st_size
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert _greedy_cpp(llm, _prompts(tokenizer)[0], NEW_TOKENS, eos)


def test_transformers_reads_the_f32_gguf_back_to_identical_logits(gguf_export: Path, merged_reference) -> None:
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(gguf_export, gguf_file="model-f32.gguf")
    ids = torch.tensor([[1, 504, 3458, 282, 4649, 314]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, merged_reference(ids).logits, atol=1e-5, rtol=1e-5)


def test_unknown_architecture_is_refused_before_loading(tmp_path: Path) -> None:
    from lmforge.errors import LmforgeError
    from lmforge.export.gguf import check_gguf_model

    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["Gemma3ForCausalLM"]}))
    with pytest.raises(LmforgeError, match="supports Llama-family models .* is Gemma3ForCausalLM"):
        check_gguf_model(str(tmp_path), "f32")
