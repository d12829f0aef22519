"""GGUF export: one file that llama.cpp (and Ollama, which runs llama.cpp) loads as is.

Written with ``gguf.GGUFWriter`` (the gguf package is already a dependency) rather than by driving
llama.cpp's ``convert_hf_to_gguf.py``: that converter is not installed by any package (it ships in
llama.cpp's source tree with a ``conversion/`` folder and its own gguf-py), and it would re-read the
merged weights from disk. The writer takes the merged model straight from memory and does what the
converter does for Llama-family models, checked against llama.cpp itself in tests/export:

- tensor names from ``gguf.get_tensor_name_map``; Q and K projections permuted into llama.cpp's
  rotary layout (its ``LlamaModel.permute``); a tied LM head is left out (llama.cpp reuses
  ``token_embd``);
- the tokenizer as gpt2-style BPE: tokens, token types, merges, special token ids, the
  pre-tokenizer name found by llama.cpp's own hash of a probe text (llama_cpp_pretokenizers.json),
  and the training chat template, so llama.cpp renders prompts exactly as training did;
- weight types: f32 (bit-exact with transformers), f16, bf16, q8_0 (1-D norms stay f32, as the
  converter does), and q4_k_m through llama.cpp's quantizer (``llama_model_quantize``, from
  llama-cpp-python), which needs the f32 file first.

Supported: ``LlamaForCausalLM`` (Llama 2/3 layout, SmolLM, the built-in model) with a BPE
``tokenizer.json``, default or linear RoPE and no projection biases. Anything else is refused before
weights load, naming what is not supported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from lmforge.errors import LmforgeError

logger = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)
PRETOKENIZERS_FILE = Path(__file__).with_name("llama_cpp_pretokenizers.json")
QUANTIZER_HINT = "pip install llama-cpp-python (its quantizer writes q4_k_m), or use export_gguf_type: q8_0"


def gguf_file_name(gguf_type: str) -> str:
    return f"model-{gguf_type}.gguf"


def check_gguf_model(model_dir: str, gguf_type: str) -> None:
    """Refuse what the writer does not support, from config.json alone (before any weight loads)."""
    config_file = Path(model_dir) / "config.json"
    if not config_file.is_file():
        raise LmforgeError(
            f"export_format: gguf needs a local model directory, and {model_dir} has no config.json",
            "point model_name_or_path at a model folder (or the built-in model)",
        )
    config = json.loads(config_file.read_text())
    architectures = config.get("architectures") or [config.get("model_type", "unknown")]
    if architectures[0] not in SUPPORTED_ARCHITECTURES:
        raise LmforgeError(
            f"export_format: gguf supports Llama-family models ({', '.join(SUPPORTED_ARCHITECTURES)}); "
            f"{model_dir} is {architectures[0]}",
            "export safetensors (export_format: safetensors) and convert it with llama.cpp's convert_hf_to_gguf.py",
        )
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    if rope_type not in ("default", "linear"):
        raise LmforgeError(
            f"export_format: gguf does not write RoPE scaling {rope_type!r} yet ({model_dir})",
            "export safetensors and convert it with llama.cpp's convert_hf_to_gguf.py",
        )
    if config.get("attention_bias") or config.get("mlp_bias"):
        raise LmforgeError(
            f"export_format: gguf does not write projection biases yet ({model_dir} has attention_bias/mlp_bias)",
            "export safetensors and convert it with llama.cpp's convert_hf_to_gguf.py",
        )
    if gguf_type == "q4_k_m":
        quantizer()


def check_gguf_tokenizer(tokenizer: Any) -> str:
    """The llama.cpp pre-tokenizer name of a BPE tokenizer; refused when llama.cpp has none for it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or type(backend.model).__name__ != "BPE":
        raise LmforgeError(
            f"export_format: gguf writes BPE tokenizers (tokenizer.json); {tokenizer.name_or_path} is not one",
            "export safetensors and convert it with llama.cpp's convert_hf_to_gguf.py",
        )
    table = _pretokenizers()
    digest = hashlib.sha256(str(tokenizer.encode(table["chktxt"])).encode()).hexdigest()
    name = table["pre_tokenizers"].get(digest)
    if name is None:
        raise LmforgeError(
            f"llama.cpp does not know the pre-tokenizer of {tokenizer.name_or_path} (hash {digest[:12]}…): "
            "a GGUF would tokenize text differently from training",
            "export safetensors and check llama.cpp's convert_hf_to_gguf_update.py for this tokenizer",
        )
    return name


@cache
def _pretokenizers() -> dict[str, Any]:
    return json.loads(PRETOKENIZERS_FILE.read_text(encoding="utf-8"))


def quantizer() -> Any:
    """llama.cpp's quantizer from llama-cpp-python, or a clear refusal when it is not installed."""
    try:
        import llama_cpp
    except ImportError:
        raise LmforgeError("export_gguf_type: q4_k_m needs llama.cpp's quantizer, which is not installed",
                           QUANTIZER_HINT) from None  # fmt: skip
    if not hasattr(llama_cpp, "llama_model_quantize"):
        raise LmforgeError("this llama-cpp-python has no llama_model_quantize", QUANTIZER_HINT)
    return llama_cpp


def write_gguf(model: Any, tokenizer: Any, path: Path, gguf_type: str, name: str, eot_token_id: int | None) -> Path:
    """Write ``model`` (merged, any dtype) with ``tokenizer`` (carrying the training chat template)."""
    pre = check_gguf_tokenizer(tokenizer)
    if gguf_type == "q4_k_m":
        with tempfile.TemporaryDirectory(prefix=".f32-", dir=path.parent) as tmp:
            source = _write(model, tokenizer, Path(tmp) / "f32.gguf", "f32", name, pre, eot_token_id)
            _quantize_q4_k_m(source, path)
        return path
    return _write(model, tokenizer, path, gguf_type, name, pre, eot_token_id)


def _write(model: Any, tokenizer: Any, path: Path, gguf_type: str, name: str, pre: str, eot: int | None) -> Path:
    import gguf

    config = model.config
    writer = gguf.GGUFWriter(str(path), arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    writer.add_name(name)
    _add_hyperparameters(writer, config, gguf_type)
    _add_tokenizer(writer, tokenizer, config.vocab_size, pre, eot)
    for gguf_name, array, qtype in _tensors(model, gguf_type):
        writer.add_tensor(gguf_name, array, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_hyperparameters(writer: Any, config: Any, gguf_type: str) -> None:
    import gguf

    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_file_type(
        {
            "f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
            "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        }[gguf_type]
    )  # fmt: skip
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.num_key_value_heads or heads)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    rope = getattr(config, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(config, "rope_theta", None))
    if theta is not None:
        writer.add_rope_freq_base(float(theta))
    if rope.get("rope_type") == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))


def _add_tokenizer(writer: Any, tokenizer: Any, vocab_size: int, pre: str, eot: int | None) -> None:
    """Tokens as llama.cpp's converter writes them (``get_vocab_base`` + ``_set_vocab_gpt2``)."""
    import gguf

    reverse = {i: token for token, i in tokenizer.get_vocab().items()}
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        token = reverse.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        if token in added:
            # llama.cpp expects control and user-defined tokens pre-normalized.
            if not decoder[i].normalized:
                token = tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))
            if decoder[i].special or (token.startswith("<|") and token.endswith("|>")):
                types.append(gguf.TokenType.CONTROL)
            else:
                types.append(gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(token)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    with tempfile.TemporaryDirectory(prefix="lmforge-tokenizer-") as folder:
        tokenizer.save_pretrained(folder)  # SpecialVocab reads merges and special ids from the saved files
        special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    special.chat_template = tokenizer.chat_template  # the training template, also when none was saved
    # The chat template writes bos where the format has one; training encodes without adding it.
    special.add_special_token["bos"] = bool(_adds_bos(tokenizer))
    special.add_special_token["eos"] = False
    special.add_to_gguf(writer, quiet=True)
    if eot is not None and eot != tokenizer.eos_token_id:
        writer.add_eot_token_id(eot)


def _adds_bos(tokenizer: Any) -> bool:
    ids = tokenizer("a").input_ids
    return tokenizer.bos_token_id is not None and bool(ids) and ids[0] == tokenizer.bos_token_id


def _tensors(model: Any, gguf_type: str) -> Any:
    """(gguf name, numpy data, ggml type) per weight, in the state dict's order."""
    import gguf
    import torch

    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    wanted = {
        "f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
        "bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0,
    }[gguf_type]  # fmt: skip
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise LmforgeError(f"no GGUF name for the tensor {hf_name}", "export safetensors instead")
        data = tensor.detach().to("cpu", torch.float32)
        if hf_name.endswith("q_proj.weight"):
            data = _permute(data, heads, heads)
        elif hf_name.endswith("k_proj.weight"):
            data = _permute(data, heads, kv_heads)
        array = data.numpy()
        qtype = gguf.GGMLQuantizationType.F32 if array.ndim <= 1 else wanted
        try:
            yield gguf_name, gguf.quants.quantize(array, qtype), qtype
        except gguf.QuantError:  # a row length q8_0 blocks do not divide: f16, as the converter does
            yield gguf_name, gguf.quants.quantize(array, gguf.GGMLQuantizationType.F16), gguf.GGMLQuantizationType.F16


def _permute(weights: Any, n_head: int, n_head_kv: int) -> Any:
    """llama.cpp's rotary layout (interleaved halves per head), as its converter permutes Q and K."""
    if n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _quantize_q4_k_m(source: Path, target: Path) -> None:
    import ctypes

    llama_cpp = quantizer()
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if code != 0:
        raise LmforgeError(f"llama.cpp's quantizer failed on {source.name} (code {code})", QUANTIZER_HINT)
