"""QLoRA (issue 16): base weights in 4 or 8 bits (bitsandbytes), LoRA on top.

The mechanics run on the tiny random model (seconds); the acceptance run trains the built-in model
in nf4 and in int8, then chats with and exports the adapter on the full-precision base.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from lmforge.cli import main as lmforge
from lmforge.config import build_config
from lmforge.errors import LmforgeError
from lmforge.models.loader import load_model
from lmforge.models.methods import apply_method, count_parameters
from lmforge.models.quantization import bitsandbytes_config, param_storage_bytes, parameter_storage_bytes
from lmforge.train.reliability.checkpoints import DISK_MARGIN, estimate_checkpoint_bytes
from lmforge.train.run import run_training

REPO = Path(__file__).resolve().parents[2]
TINY_PARAMETERS = 3_219_776  # the tiny Llama of conftest.py, counted unquantized
TINY_LORA_PARAMETERS = 16_384  # rank 8 on the 7 linear layers of its 2 decoder layers
BUILTIN_PARAMETERS = 134_515_008  # SmolLM2-135M-Instruct
BUILTIN_NF4_STATE_DICT_BYTES = 168_419_830  # its nf4 + double quantization state_dict, summed (docs/qlora.md)
RECORDS = [
    {"instruction": "Say hello.", "output": "Hello there, friend!"},
    {"instruction": "What is two plus two?", "output": "Two plus two is four."},
    {"instruction": "Name a colour.", "output": "Red, like a sunset over the sea."},
    {"instruction": "Count to three.", "output": "One, two, three."},
]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("qlora-data") / "tiny.json"
    path.write_text(json.dumps(RECORDS))
    return path


def _cfg(model: Path, data: Path, out: Path, **overrides: Any):
    flat = {
        "model_name_or_path": str(model),
        "dataset": str(data),
        "template": "chatml",
        "cutoff_len": 64,
        "output_dir": str(out),
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-2,
        "max_steps": 6,
        "logging_steps": 1,
        "save_steps": 100,
        "plot_loss": False,
        "lr_scheduler_type": "constant",
        "preprocessing_num_workers": 1,
        "template_checks": "off",
        **overrides,
    }
    return build_config(flat)


def _losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [row["loss"] for row in rows if "loss" in row]


def _state_dict_bytes(module: Any) -> int:
    """The independent sum: every tensor transformers/bitsandbytes would save, each storage once."""
    seen: set[int] = set()
    total = 0
    for tensor in module.state_dict().values():
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total


# --- configuration: refused before anything loads ------------------------------------------------


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ({"quantization_bit": 3}, "key 'quantization_bit' has invalid value 3: Input should be 4 or 8"),
        ({"quantization_bit": 4, "quantization_method": "gptq"}, "quantization_method: gptq is not supported yet"),
        ({"quantization_method": "awq"}, "quantization_method: awq is not supported yet"),
        ({"quantization_bit": 4, "finetuning_type": "full"}, "quantization_bit: 4 needs finetuning_type: lora"),
        ({"quantization_bit": 8, "finetuning_type": "freeze"}, "quantization_bit: 8 needs finetuning_type: lora"),
        ({"quantization_bit": 8, "quantization_type": "fp4"}, "quantization_type applies to quantization_bit: 4"),
        ({"double_quantization": False}, "double_quantization applies to quantization_bit: 4 only (it is None)"),
        ({"quantization_bit": 4, "adapter_name_or_path": "a,b"}, "quantization_bit: 4 takes one adapter"),
        ({"quantization_bit": 4, "pissa_init": True}, "pissa_init cannot initialise from quantized weights"),
        ({"quantization_bit": 4, "infer_backend": "vllm"}, "infer_backend: vllm does not take quantization_bit"),
        ({"upcast_layernorm": True, "pure_bf16": True}, "upcast_layernorm cannot combine with pure_bf16"),
    ],
)
def test_bad_quantization_settings_are_refused_with_the_key(flat: dict[str, Any], message: str) -> None:
    with pytest.raises(LmforgeError) as err:
        build_config(flat)
    assert message in str(err.value)


def test_defaults_follow_llamafactory_and_compute_dtype_follows_precision() -> None:
    cfg = build_config({"quantization_bit": 4})
    assert (cfg.model.quantization_method, cfg.model.quantization_type, cfg.model.double_quantization) == (
        "bnb",
        "nf4",
        True,
    )
    bnb = bitsandbytes_config(cfg.model, torch.bfloat16)
    assert bnb.load_in_4bit and not bnb.load_in_8bit
    assert (bnb.bnb_4bit_quant_type, bnb.bnb_4bit_use_double_quant) == ("nf4", True)
    assert bnb.bnb_4bit_compute_dtype == torch.bfloat16
    assert bitsandbytes_config(build_config({"quantization_bit": 8}).model, torch.float32).load_in_8bit
    assert bitsandbytes_config(build_config({}).model, torch.float32) is None


def test_missing_bitsandbytes_names_the_extra_and_writes_nothing(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    real_find_spec = importlib.util.find_spec

    def without_bitsandbytes(name: str, *args: Any) -> Any:
        return None if name == "bitsandbytes" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_bitsandbytes)
    out = tmp_path / "out"
    argv = ["train", f"model_name_or_path={tiny_model_dir}", f"dataset={data_file}", "template=chatml"]
    code = lmforge([*argv, f"output_dir={out}", "quantization_bit=4"])
    shown = capsys.readouterr().err
    assert code == 1
    assert "quantization_bit: 4 needs the bitsandbytes package" in shown
    assert "pip install 'lmforge[qlora]'" in shown
    assert not out.exists()


# --- the quantized model: counts and sizes of what is really in memory ---------------------------


@pytest.fixture(scope="module", params=[4, 8], ids=["nf4", "int8"])
def quantized(request, tiny_model_dir: Path, tokenizer) -> tuple[int, Any]:
    cfg = build_config({"model_name_or_path": str(tiny_model_dir), "quantization_bit": request.param})
    return request.param, load_model(cfg.model, tokenizer)


def test_quantized_layers_are_bitsandbytes_and_counts_are_unpacked(quantized) -> None:
    import bitsandbytes as bnb

    bits, model = quantized
    layer = model.model.layers[0].self_attn.q_proj
    assert isinstance(layer, bnb.nn.Linear4bit if bits == 4 else bnb.nn.Linear8bitLt)
    if bits == 4:
        assert layer.weight.numel() == 64 * 64 // 2  # two nf4 weights per byte
        assert layer.weight.quant_state.quant_type == "nf4" and layer.weight.quant_state.nested
    _, total = count_parameters(model)
    assert total == TINY_PARAMETERS


def test_parameter_storage_equals_the_real_tensor_sizes(quantized) -> None:
    _, model = quantized
    quantized_layers = [m for m in model.modules() if type(m).__name__ in ("Linear4bit", "Linear8bitLt")]
    assert len(quantized_layers) == 14  # 7 linear layers x 2 decoder layers; the head stays full
    for layer in quantized_layers:
        # Exactly what bitsandbytes serialises, less its JSON header / format marker (no memory).
        saved = {k: t for k, t in layer.state_dict().items() if "quant_state." not in k and k != "weight_format"}
        assert param_storage_bytes(layer.weight) == sum(t.numel() * t.element_size() for t in saved.values())
    reported, independent = parameter_storage_bytes(model), _state_dict_bytes(model)
    assert abs(reported - independent) <= 0.02 * independent
    full_precision = 4 * TINY_PARAMETERS
    assert reported < full_precision


def test_checkpoint_estimate_counts_packed_weights_and_their_state(quantized) -> None:
    _, model = quantized
    assert estimate_checkpoint_bytes(model, with_optimizer=False) == int(parameter_storage_bytes(model) * DISK_MARGIN)


@pytest.mark.parametrize("finetuning_type", ["full", "freeze"])
def test_full_and_freeze_refuse_a_quantized_base(quantized, finetuning_type: str) -> None:
    method = build_config({"finetuning_type": finetuning_type}).method
    with pytest.raises(LmforgeError, match=f"finetuning_type: {finetuning_type} cannot train a quantized base"):
        apply_method(quantized[1], method, None)


def test_upcast_layernorm_casts_only_the_norm_weights(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from lmforge.models.quantization import upcast_layernorms

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    assert upcast_layernorms(model) == 5  # 2 norms in each of the 2 layers + the final norm
    dtypes = {name: p.dtype for name, p in model.named_parameters()}
    assert {d for n, d in dtypes.items() if "norm" in n} == {torch.float32}
    assert {d for n, d in dtypes.items() if "norm" not in n} == {torch.bfloat16}


# --- training: QLoRA on the tiny model -----------------------------------------------------------


@pytest.fixture(scope="module")
def nf4_adapter(tmp_path_factory, tiny_model_dir: Path, data_file: Path) -> Path:
    out = tmp_path_factory.mktemp("qlora") / "nf4"
    run_training(_cfg(tiny_model_dir, data_file, out, quantization_bit=4, gradient_checkpointing=True))
    return out


def test_nf4_qlora_trains_lora_only_and_the_loss_falls(nf4_adapter: Path) -> None:
    losses = _losses(nf4_adapter)
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.1
    saved = load_file(nf4_adapter / "adapter_model.safetensors")
    assert saved and all("lora_" in name for name in saved)
    assert sum(t.numel() for t in saved.values()) == TINY_LORA_PARAMETERS
    parameters = json.loads((nf4_adapter / "run_manifest.json").read_text())["parameters"]
    assert parameters["total"] == TINY_PARAMETERS + TINY_LORA_PARAMETERS  # packed nf4 counted as weights
    assert parameters["trainable"] == TINY_LORA_PARAMETERS
    assert parameters["bytes"] < 4 * TINY_PARAMETERS


def test_int8_qlora_trains_and_the_loss_falls(tmp_path: Path, tiny_model_dir: Path, data_file: Path) -> None:
    run_training(_cfg(tiny_model_dir, data_file, tmp_path / "int8", quantization_bit=8))
    losses = _losses(tmp_path / "int8")
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.1


def test_qlora_adapter_continues_training_on_the_quantized_base(
    nf4_adapter: Path, tmp_path: Path, tiny_model_dir: Path, data_file: Path
) -> None:
    cfg = _cfg(tiny_model_dir, data_file, tmp_path / "more", quantization_bit=4, adapter_name_or_path=str(nf4_adapter))
    run_training(cfg)
    before = load_file(nf4_adapter / "adapter_model.safetensors")
    after = load_file(tmp_path / "more" / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # The first step already sees the trained adapter: lower loss than the first run's start.
    assert _losses(tmp_path / "more")[0] < _losses(nf4_adapter)[0] - 0.1


def test_qlora_adapter_stays_beside_the_quantized_base_for_inference(
    nf4_adapter: Path, tiny_model_dir: Path, tokenizer
) -> None:
    from peft import PeftModel

    flat = {"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(nf4_adapter)}
    model = load_model(build_config({**flat, "quantization_bit": 4}).model, tokenizer)
    assert isinstance(model, PeftModel)  # not merged: merging would round the nf4 weights again
    plain = load_model(build_config(flat).model, tokenizer)
    assert not isinstance(plain, PeftModel)  # on the full-precision base it is merged, as for LoRA
    ids = torch.tensor([tokenizer.encode("Say hello.")])
    with torch.no_grad():
        close = torch.nn.functional.cosine_similarity(model(ids).logits.flatten(), plain(ids).logits.flatten(), dim=0)
    assert close > 0.99  # the same adapter on nf4 vs fp32 weights: nearly the same logits


def test_export_merges_a_qlora_adapter_into_the_full_precision_base(
    nf4_adapter: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    argv = ["export", f"model_name_or_path={tiny_model_dir}", f"adapter_name_or_path={nf4_adapter}"]
    assert lmforge([*argv, f"export_dir={tmp_path / 'merged'}", "quantization_bit=4"]) == 0
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"  # tests/export compares logits


# --- acceptance on the built-in model ------------------------------------------------------------


def _builtin_run(out: Path, bits: int, *overrides: str) -> list[str]:
    """examples/sft_qlora.yaml, shortened; no checkpointing (same losses, tested elsewhere; faster)."""
    return [
        "train",
        str(REPO / "examples" / "sft_qlora.yaml"),
        f"output_dir={out}",
        f"dataset_dir={REPO / 'data'}",
        f"quantization_bit={bits}",
        "dataset=identity",
        "per_device_train_batch_size=4",
        "cutoff_len=96",
        "max_steps=12",
        "learning_rate=2e-3",
        "warmup_ratio=0",
        "logging_steps=1",
        "plot_loss=false",
        "gradient_checkpointing=false",
        *overrides,
    ]


@pytest.mark.slow
def test_builtin_qlora_nf4_trains_chats_and_exports_full_precision(tmp_path: Path, builtin_dir: Path, capsys) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "nf4"
    assert lmforge(_builtin_run(out, 4)) == 0
    losses = _losses(out)
    assert losses[-1] < losses[0]
    parameters = json.loads((out / "run_manifest.json").read_text())["parameters"]
    adapter_bytes = sum(t.numel() * t.element_size() for t in load_file(out / "adapter_model.safetensors").values())
    assert parameters["total"] == BUILTIN_PARAMETERS + adapter_bytes // 4  # nf4 counted as weights, not bytes
    # Reported bytes vs the independent state_dict sum of the nf4 base (docs/qlora.md) + the fp32 adapter.
    expected = BUILTIN_NF4_STATE_DICT_BYTES + adapter_bytes
    assert abs(parameters["bytes"] - expected) <= 0.02 * expected
    capsys.readouterr()
    # The adapter on the unquantized base (no quantization_bit): chat answers with it.
    argv = ["chat", f"model_name_or_path={builtin_dir}", f"adapter_name_or_path={out}", "max_new_tokens=24"]
    code = lmforge([*argv, "do_sample=false", "--query", "Who are you?"])
    assert code == 0
    assert "Forge" in capsys.readouterr().out
    merged = tmp_path / "merged"
    code = lmforge(
        ["export", f"model_name_or_path={builtin_dir}", f"adapter_name_or_path={out}", f"export_dir={merged}"]
    )
    assert code == 0
    model = AutoModelForCausalLM.from_pretrained(merged)  # plain transformers, no peft, no bitsandbytes
    base = AutoModelForCausalLM.from_pretrained(builtin_dir)
    assert getattr(model.config, "quantization_config", None) is None
    weight = model.model.layers[0].self_attn.q_proj.weight
    assert weight.dtype == torch.float32 and weight.shape == (576, 576)
    adapter = load_file(out / "adapter_model.safetensors")
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    a, b = adapter[f"{prefix}.lora_A.weight"], adapter[f"{prefix}.lora_B.weight"]
    delta = (b @ a) * (32 / 16)  # lora_alpha defaults to 2 x rank
    assert torch.allclose(weight, base.model.layers[0].self_attn.q_proj.weight + delta, atol=1e-5)


@pytest.mark.slow
def test_builtin_qlora_int8_trains_and_the_loss_falls(tmp_path: Path) -> None:
    out = tmp_path / "int8"
    assert lmforge(_builtin_run(out, 8, "max_steps=3", "per_device_train_batch_size=2", "cutoff_len=64")) == 0
    losses = _losses(out)
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert json.loads((out / "run_manifest.json").read_text())["parameters"]["total"] > BUILTIN_PARAMETERS
