"""Where an answer's score comes from: one of, chosen by ``reward_model`` / ``reward_funcs``:

- a reward model trained by ``stage: rm`` (``reward_model_type`` full or lora), loaded frozen through
  ``load_model`` with a sequence-classification head; it scores prompt + answer ids as they are
  (the policy's tokenizer and template, which is what it was trained on), at the last token that is
  not padding — transformers' rule, the same one it was trained with;
- an HTTP scoring server (``reward_model_type: api``): LLaMA-Factory's POST /v1/score/evaluation
  ``{model, messages: [rendered prompt + answer, ...]} -> {scores: [...]}``, which ``lmforge api``
  with ``stage: rm`` serves;
- reward functions (``reward_funcs``, train/rewards.py): their weighted sum on the rendered prompt,
  the decoded answer and the record's reference answer.

Every source takes a ``Rollout`` and returns one float32 score per answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from lmforge.errors import LmforgeError

SCORE_ROUTE = "/v1/score/evaluation"


@dataclass
class Rollout:
    prompts: list[list[int]]
    answers: list[list[int]]
    references: list[str | None]
    tokenizer: Any

    def texts(self) -> list[str]:
        """Prompt + answer as one rendered text each (special tokens kept: what a reward model reads)."""
        return [self.tokenizer.decode(p + a, skip_special_tokens=False) for p, a in zip(self.prompts, self.answers)]


def reward_model_type(reward_model: str, declared: str | None) -> str:
    """``api`` for a URL, ``lora`` for a folder with adapter_config.json, else ``full``; a declared
    ``reward_model_type`` that contradicts what the path is, is refused."""
    if urlparse(reward_model).scheme in ("http", "https"):
        detected = "api"
    elif (Path(reward_model) / "adapter_config.json").is_file():
        detected = "lora"
    else:
        detected = "full"
    if declared is not None and declared != detected:
        what = {"api": "an http(s) URL", "lora": "a LoRA adapter folder", "full": "a model folder"}
        raise LmforgeError(
            f"reward_model_type: {declared} does not match reward_model {reward_model}, which is {what[detected]}",
            f"set reward_model_type: {detected}, or remove it (it is detected)",
        )
    return detected


def check_reward_model(reward_model: str, kind: str) -> None:
    """Before any weight loads: a local reward model must be a sequence-classification model (what
    stage rm saves); a causal LM would get a random score head and train towards noise."""
    if kind == "api":
        return
    folder = Path(reward_model)
    fix = "point reward_model at the output_dir of a stage rm run (or a checkpoint-N folder in it)"
    if kind == "lora":
        task = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("task_type")
        if task != "SEQ_CLS":
            raise LmforgeError(
                f"reward_model: {folder} is a LoRA adapter for {task or 'an unknown task'}, not a reward model "
                "(task_type SEQ_CLS)",
                fix,
            )
        return
    if not (folder / "config.json").is_file():
        state = "does not exist" if not folder.exists() else "is not a model folder (no config.json)"
        raise LmforgeError(f"reward_model: {folder} {state}", fix)
    architectures = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        raise LmforgeError(
            f"reward_model: {folder} is a {', '.join(architectures) or 'model'} without a score head, not a reward "
            "model (a *ForSequenceClassification model)",
            fix,
        )


class RewardModelScores:
    """A local reward model: one forward over prompt + answer, right-padded."""

    def __init__(self, model: Any, pad_id: int, batch_size: int) -> None:
        self.model, self.pad_id, self.batch_size = model, pad_id, batch_size

    @torch.no_grad()
    def __call__(self, rollout: Rollout) -> torch.Tensor:
        rows = [p + a for p, a in zip(rollout.prompts, rollout.answers, strict=True)]
        device = next(self.model.parameters()).device
        scores = []
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            width = max(len(r) for r in chunk)
            ids = torch.tensor([r + [self.pad_id] * (width - len(r)) for r in chunk], device=device)
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk], device=device)
            scores.append(self.model(input_ids=ids, attention_mask=mask).logits[:, 0].float())
        return torch.cat(scores).cpu()


class HttpScores:
    """A scoring server; the score route is appended to a URL that has no path."""

    def __init__(self, url: str, model_name: str, timeout: float = 300.0) -> None:
        self.url = url.rstrip("/") + SCORE_ROUTE if urlparse(url).path in ("", "/") else url
        self.model_name, self.timeout = model_name, timeout

    def __call__(self, rollout: Rollout) -> torch.Tensor:
        import httpx

        texts = rollout.texts()
        try:
            response = httpx.post(self.url, json={"model": self.model_name, "messages": texts}, timeout=self.timeout)
        except httpx.HTTPError as err:
            raise LmforgeError(f"reward_model: cannot reach {self.url}: {err}", "start the scoring server") from None
        if response.status_code != 200:
            raise LmforgeError(
                f"reward_model: {self.url} answered {response.status_code}: {response.text[:200]}",
                "check that it serves POST /v1/score/evaluation (lmforge api with stage: rm)",
            )
        scores = response.json().get("scores")
        if not isinstance(scores, list) or len(scores) != len(texts):
            raise LmforgeError(
                f"reward_model: {self.url} returned {len(scores) if isinstance(scores, list) else 'no'} scores "
                f"for {len(texts)} texts",
                "the server must answer {scores: [one float per message]}",
            )
        return torch.tensor([float(s) for s in scores], dtype=torch.float32)


class FunctionScores:
    """The weighted sum of the run's reward functions (train/rewards.py)."""

    def __init__(self, rewards: list[Any]) -> None:
        self.rewards = rewards

    def __call__(self, rollout: Rollout) -> torch.Tensor:
        from lmforge.train.rewards import weighted_sum

        tokenizer = rollout.tokenizer
        prompts = [tokenizer.decode(p, skip_special_tokens=False) for p in rollout.prompts]
        completions = [tokenizer.decode(a, skip_special_tokens=True) for a in rollout.answers]
        return torch.tensor(weighted_sum(self.rewards, prompts, completions, rollout.references), dtype=torch.float32)
