"""stage ppo end to end on a tiny random model (LoRA and full): with a dense toy reward the mean
reward rises in a few steps, the first step's KL to the reference is exactly 0, the run writes every
reliability output plus its value head, a SIGKILLed run resumes to the uninterrupted run's losses,
and each reward source scores what it should (HTTP scoring route, reward functions, reward model).

The toy reward: the share of answer tokens "near" a target token (embedding pointing the same way
as `` yes``'s in the tiny model), which a random policy hits half the time, so every batch has
signal. Sampling is top_k 8, which a few PPO updates can reorder.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch
from kill_resume import train_until_killed

from lmforge.config import build_config
from lmforge.train.run import run_training

PROMPTS = [{"instruction": f"Answer with yes or no: question {i}?", "output": "yes"} for i in range(16)]


def near_tokens(model_dir: Path, tokenizer: Any) -> torch.Tensor:
    from safetensors.torch import load_file

    embeddings = load_file(str(model_dir / "model.safetensors"))["model.embed_tokens.weight"]
    target = embeddings[tokenizer.encode(" yes", add_special_tokens=False)[0]]
    return embeddings @ target > 0


REWARD_FILE = '''
import torch
from transformers import AutoTokenizer

TOKENIZER = AutoTokenizer.from_pretrained({model!r})
NEAR = torch.load({near!r})


def near_share(completions):
    """Share of each answer's tokens near the target token."""
    shares = []
    for text in completions:
        ids = TOKENIZER.encode(text, add_special_tokens=False)
        shares.append(float(NEAR[ids].float().mean()) if ids else 0.0)
    return shares
'''


@pytest.fixture(scope="module")
def toy(tiny_model_dir: Path, tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ppo-toy")
    (folder / "prompts.json").write_text(json.dumps(PROMPTS))
    torch.save(near_tokens(tiny_model_dir, tokenizer), folder / "near.pt")
    (folder / "near_reward.py").write_text(REWARD_FILE.format(model=str(tiny_model_dir), near=str(folder / "near.pt")))
    return {"data": folder / "prompts.json", "reward": folder / "near_reward.py", "near": folder / "near.pt"}


def _flat(model: Path, toy: dict[str, Path], out: Path, **keys: Any) -> dict[str, Any]:
    return {
        "model_name_or_path": str(model), "stage": "ppo", "dataset": str(toy["data"]), "template": "chatml",
        "cutoff_len": 64, "output_dir": str(out), "per_device_train_batch_size": 8, "max_steps": 6,
        "logging_steps": 1, "save_steps": 3, "lr_scheduler_type": "constant", "preprocessing_num_workers": 1,
        "max_new_tokens": 4, "temperature": 1.0, "top_p": 1.0, "top_k": 8, "ppo_epochs": 2, "seed": 0,
        **keys,
    }  # fmt: skip


def _log(out: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [row for row in rows if "loss" in row]


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(row[key] for row in rows) / len(rows)


def _assert_learned(out: Path) -> list[dict[str, Any]]:
    rows = _log(out)
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    for key in ("loss", "reward/mean", "kl", "kl_coef", "value_loss", "policy_loss", "response_length"):
        assert key in rows[0], key
    assert rows[0]["kl"] == 0.0  # step 1 samples from the starting policy, which is the reference
    assert _mean(rows[-2:], "reward/mean") > _mean(rows[:2], "reward/mean") + 0.15
    for name in ("trainer_log.jsonl", "training_loss.png", "run_manifest.json", "value_head.safetensors",
                 "ppo_state.json"):  # fmt: skip
        assert (out / name).is_file(), name
    return rows


class ScoringServer:
    """A stand-in for ``lmforge api`` with a reward model: POST /v1/score/evaluation, near-token share."""

    def __init__(self, tokenizer: Any, near: torch.Tensor) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, body))
                answers = [text.rsplit("<|im_start|>assistant\n", 1)[-1].replace("<|im_end|>", "")
                           for text in body["messages"]]  # fmt: skip
                ids = [tokenizer.encode(answer, add_special_tokens=False) for answer in answers]
                scores = [float(near[i].float().mean()) if i else 0.0 for i in ids]
                payload = json.dumps({"scores": scores}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScoringServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_lora_ppo_scored_by_an_http_server_raises_the_mean_reward(
    tiny_model_dir: Path, toy: dict[str, Path], tmp_path: Path, tokenizer: Any
) -> None:
    out = tmp_path / "lora"
    with ScoringServer(tokenizer, torch.load(toy["near"])) as server:
        run_training(build_config(_flat(tiny_model_dir, toy, out, finetuning_type="lora", learning_rate=0.05,
                                        reward_model=server.url)))  # fmt: skip
    rows = _assert_learned(out)
    assert (out / "adapter_model.safetensors").is_file()
    assert len(server.requests) == 6  # one scoring request per step, all prompts together
    path, body = server.requests[0]
    assert path == "/v1/score/evaluation" and body["model"] == str(tiny_model_dir)
    assert len(body["messages"]) == 8 and body["messages"][0].startswith("<|im_start|>")
    assert rows[0]["reward/mean"] == pytest.approx(sum(_scores_of(server, 0, tokenizer, toy)) / 8, abs=2e-6)


def _scores_of(server: ScoringServer, request: int, tokenizer: Any, toy: dict[str, Path]) -> list[float]:
    near = torch.load(toy["near"])
    answers = [text.rsplit("<|im_start|>assistant\n", 1)[-1].replace("<|im_end|>", "")
               for text in server.requests[request][1]["messages"]]  # fmt: skip
    ids = [tokenizer.encode(answer, add_special_tokens=False) for answer in answers]
    return [float(near[i].float().mean()) if i else 0.0 for i in ids]


def test_full_ppo_with_a_reward_function_raises_the_reward_and_resumes_exactly_after_sigkill(
    tiny_model_dir: Path, toy: dict[str, Path], tmp_path: Path
) -> None:
    keys = {"finetuning_type": "full", "learning_rate": 0.01, "reward_funcs": f"{toy['reward']}:near_share"}
    reference = tmp_path / "reference"
    run_training(build_config(_flat(tiny_model_dir, toy, reference, **keys)))
    expected = {row["step"]: row for row in _assert_learned(reference)}

    out = tmp_path / "killed"
    train_until_killed(_flat(tiny_model_dir, toy, out, plot_loss=False, **keys), tmp_path / "cfg.yaml", checkpoint=3)
    run_training(build_config({**_flat(tiny_model_dir, toy, out, plot_loss=False, **keys),
                               "resume_from_checkpoint": True}))  # fmt: skip
    resumed = {row["step"]: row for row in _log(out)}
    assert sorted(resumed) == sorted(expected)
    for step in range(4, 7):  # sampled from the restored policy with the same seeds: same answers, same updates
        for key in ("loss", "reward/mean", "kl", "kl_coef", "value_loss"):
            assert resumed[step][key] == pytest.approx(expected[step][key], abs=1e-5), (step, key)


def test_reward_model_scores_padded_batches_as_transformers_scores_each_sequence(tiny_model_dir: Path) -> None:
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from lmforge.train.ppo.scores import RewardModelScores, Rollout

    torch.manual_seed(0)
    config = LlamaConfig.from_pretrained(tiny_model_dir, num_labels=1)
    model = LlamaForSequenceClassification(config).eval()
    prompts, answers = [[5, 6, 7], [8, 9]], [[10, 11, config.pad_token_id], [12]]  # the first ends with <|im_end|>
    scores = RewardModelScores(model, config.pad_token_id, batch_size=2)(Rollout(prompts, answers, [None] * 2, None))
    with torch.no_grad():
        alone = [float(model(input_ids=torch.tensor([p + a])).logits[0, 0]) for p, a in zip(prompts, answers)]
    assert scores.tolist() == pytest.approx(alone, abs=1e-5)


def test_reward_model_type_is_detected_and_a_causal_lm_or_missing_folder_is_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from lmforge.errors import LmforgeError
    from lmforge.train.ppo.scores import check_reward_model, reward_model_type

    adapter = tmp_path / "rm-lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"task_type": "SEQ_CLS"}))
    assert reward_model_type("https://scores.example/v1/score/evaluation", None) == "api"
    assert reward_model_type(str(adapter), None) == "lora"
    assert reward_model_type(str(tiny_model_dir), "full") == "full"
    check_reward_model(str(adapter), "lora")
    with pytest.raises(LmforgeError, match="LlamaForCausalLM without a score head"):
        check_reward_model(str(tiny_model_dir), "full")
    with pytest.raises(LmforgeError, match="does not exist"):
        check_reward_model(str(tmp_path / "missing"), "full")
    (adapter / "adapter_config.json").write_text(json.dumps({"task_type": "CAUSAL_LM"}))
    with pytest.raises(LmforgeError, match="LoRA adapter for CAUSAL_LM, not a reward model"):
        check_reward_model(str(adapter), "lora")


def test_a_lora_reward_adapter_loads_on_the_runs_base_and_scores_as_peft_does(
    tiny_model_dir: Path, toy: dict[str, Path], tmp_path: Path, tokenizer: Any
) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from lmforge.train.stages import get_stage

    torch.manual_seed(1)
    adapter = tmp_path / "rm-lora"
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    lora = LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["q_proj"], modules_to_save=["score"])
    get_peft_model(base, lora).save_pretrained(adapter)
    cfg = build_config(_flat(tiny_model_dir, toy, tmp_path / "out", reward_model=str(adapter)))
    get_stage("ppo").check(cfg)
    models = get_stage("ppo").load_models(cfg, tokenizer)
    assert set(models) == {"reward"}  # LoRA policy: the reference is the base with the adapter disabled
    ids = torch.tensor([[5, 6, 7, 8]])
    plain = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1),
                                      adapter).eval()  # fmt: skip
    with torch.no_grad():
        assert float(models["reward"](input_ids=ids).logits[0, 0]) == pytest.approx(
            float(plain(input_ids=ids).logits[0, 0]), abs=1e-5
        )
