"""stage distill: a teacher model (``teacher_model`` + ``teacher_model_adapters``) distilled into the
trained one (full, freeze or LoRA) on SFT data.

At every trained position (the labels of data/processors.py) the student's next-token distribution
q = softmax(s / T) is pulled towards the teacher's p = softmax(t / T), T = ``distill_temperature``,
the per-token loss scaled by T^2 (Hinton et al. 2015) and averaged over the batch's trained tokens:

- ``forward_kl``: KL(p || q) = sum p (log p - log q) — covers every mode of the teacher;
- ``reverse_kl``: KL(q || p) = sum q (log q - log p) — seeks the teacher's main mode;
- ``jsd``: generalized Jensen-Shannon, m = beta p + (1 - beta) q,
  ``beta KL(p || m) + (1 - beta) KL(q || m)``, beta = ``distill_beta`` (0: forward KL, 1: reverse KL,
  as trl's GKD; Agarwal et al. 2024).

``distill_on_policy``: each batch's answers are replaced by the student's own samples (the prompt
before each row's last answer, up to ``max_completion_length`` new tokens), and the loss runs on
those tokens (GKD with lambda = 1). Logged per step: ``distill_kl``, the forward KL(p || q) at T = 1
per trained token — what distillation drives down.

Teacher and student must share a tokenizer (the same vocabulary, token for token): check() compares
them before any weight loads. Cost: a no-grad teacher forward per micro-batch (the teacher stays in
memory, in the training precision) plus, on policy, sampling the answers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

from lmforge.data.encoders import SUPERVISED
from lmforge.data.processors import IGNORE_INDEX
from lmforge.errors import LmforgeError
from lmforge.train.stages import Stage, StageParts, trainer_kwargs
from lmforge.train.stages.dpo import place_frozen
from lmforge.train.stages.preference import StageMetricsMixin
from lmforge.train.stages.sft import padding_collator
from lmforge.train.trainer import LmforgeTrainerMixin


def teacher_model_config(cfg: Any) -> Any:
    """The teacher's own ModelConfig: the student's settings with its path and adapters."""
    distill = cfg.distill
    return cfg.model.model_copy(
        update={"model_name_or_path": distill.teacher_model, "adapter_name_or_path": distill.teacher_model_adapters}
    )


def check_distill(cfg: Any) -> None:
    """A teacher is named and speaks the student's tokenizer; keys that would be ignored are refused."""
    from lmforge.models.tokenizer import load_tokenizer

    distill, data = cfg.distill, cfg.data
    if distill.teacher_model is None:
        raise LmforgeError("stage distill needs teacher_model", "set teacher_model to a model path, .gguf or alias")
    if cfg.explicitly_set("distill_beta") and distill.distill_loss != "jsd" and distill.distill_beta != 0.5:
        raise LmforgeError(
            f"distill_beta applies to distill_loss: jsd (it is {distill.distill_loss})",
            "set distill_loss: jsd or remove distill_beta",
        )
    if cfg.explicitly_set("max_completion_length") and not distill.distill_on_policy:
        raise LmforgeError(
            "max_completion_length applies to distill_on_policy: true (off policy, the data's answers are used)",
            "set distill_on_policy: true or remove max_completion_length",
        )
    for key in ("packing", "neat_packing", "streaming"):
        if getattr(data, key):
            raise LmforgeError(f"{key} cannot be used with stage distill", f"remove {key}")
    student = load_tokenizer(cfg.model)
    teacher = load_tokenizer(teacher_model_config(cfg).model_copy(update={"adapter_name_or_path": None}))
    if student.get_vocab() != teacher.get_vocab():
        raise LmforgeError(
            f"teacher_model {distill.teacher_model} has another tokenizer than model_name_or_path "
            f"{cfg.model.model_name_or_path} ({len(teacher)} vs {len(student)} tokens, or the same ids for other "
            "tokens), so their next-token distributions cannot be compared",
            "use a teacher of the same model family (the same tokenizer), e.g. a larger sibling",
        )


def load_teacher(cfg: Any, tokenizer: Any) -> dict[str, Any]:
    from lmforge.models.loader import load_model

    return {"teacher": load_model(teacher_model_config(cfg), tokenizer, train=cfg.train)}


def divergence(student: torch.Tensor, teacher: torch.Tensor, loss: str, beta: float) -> torch.Tensor:
    """Per-token divergence between two sets of log-probabilities (..., vocab) -> (...)."""

    def kl(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:  # KL(a || b)
        return (log_a.exp() * (log_a - log_b)).sum(-1)

    if loss == "forward_kl" or (loss == "jsd" and beta == 0):
        return kl(teacher, student)
    if loss == "reverse_kl" or (loss == "jsd" and beta == 1):
        return kl(student, teacher)
    mixture = torch.logsumexp(torch.stack([teacher + torch.log(torch.tensor(beta)),
                                           student + torch.log(torch.tensor(1 - beta))]), dim=0)  # fmt: skip
    return beta * kl(teacher, mixture) + (1 - beta) * kl(student, mixture)


class DistillTrainer(StageMetricsMixin, LmforgeTrainerMixin, Trainer):
    """transformers' Trainer with lmforge's reliability and the distillation loss above."""

    def __init__(self, *args: Any, distill: Any, teacher: Any, pad_token_id: int, max_new_tokens: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.distill = distill
        self.teacher = place_frozen(teacher, self.args.device)
        self.pad_token_id = pad_token_id
        self.max_new_tokens = max_new_tokens
        self.model_accepts_loss_kwargs = False  # a mean over trained tokens: scaled for accumulation upstream

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        if self.distill.distill_on_policy and model.training:
            inputs = self.sample_answers(model, inputs)
        labels = inputs["labels"][:, 1:]
        mask = labels != IGNORE_INDEX
        forward = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"], "use_cache": False}
        student_logits = model(**forward).logits[:, :-1][mask].float()
        with torch.no_grad():
            teacher_logits = self.teacher(**forward).logits[:, :-1][mask].float()
        temperature, distill = self.distill.distill_temperature, self.distill
        per_token = divergence(
            F.log_softmax(student_logits / temperature, -1), F.log_softmax(teacher_logits / temperature, -1),
            distill.distill_loss, distill.distill_beta,
        ) * temperature**2  # fmt: skip
        with torch.no_grad():
            kl = divergence(F.log_softmax(student_logits, -1), F.log_softmax(teacher_logits, -1), "forward_kl", 0)
        self.stage_metrics.record(model.training, distill_kl=kl)
        loss = per_token.mean() if per_token.numel() else student_logits.sum() * 0.0
        return (loss, {"logits": student_logits}) if return_outputs else loss

    def sample_answers(self, model: Any, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The rows' prompts (before each last trained span) answered by the student itself."""
        ids, labels = inputs["input_ids"], inputs["labels"]
        prompts = []
        for row_ids, row_labels, row_mask in zip(ids, labels, inputs["attention_mask"], strict=True):
            trained = (row_labels != IGNORE_INDEX).nonzero().flatten().tolist()
            start = trained[-1] if trained else int(row_mask.sum())
            while start > 0 and start - 1 in trained:  # back to the start of the last trained span
                start -= 1
            prompts.append(row_ids[:start])
        width = max(len(p) for p in prompts)
        padded = torch.full((len(prompts), width), self.pad_token_id, dtype=ids.dtype, device=ids.device)
        attention = torch.zeros_like(padded)
        for i, prompt in enumerate(prompts):  # left padding for generation
            padded[i, width - len(prompt) :] = prompt
            attention[i, width - len(prompt) :] = 1
        unwrapped = self.accelerator.unwrap_model(model)
        with torch.no_grad():
            out = unwrapped.generate(
                input_ids=padded, attention_mask=attention, do_sample=True, max_new_tokens=self.max_new_tokens,
                pad_token_id=self.pad_token_id,
            )  # fmt: skip
        eos = unwrapped.generation_config.eos_token_id
        eos_ids = set([eos] if isinstance(eos, int) else (eos or []))
        rows = []
        for prompt, completion in zip(prompts, out[:, width:], strict=True):
            answer = completion.tolist()
            ends = [i for i, token in enumerate(answer) if token in eos_ids]
            answer = answer[: ends[0] + 1] if ends else answer
            rows.append((prompt.tolist() + answer, [IGNORE_INDEX] * len(prompt) + answer))
        longest = max(len(r) for r, _ in rows)
        batch = {
            "input_ids": torch.tensor([r + [self.pad_token_id] * (longest - len(r)) for r, _ in rows]),
            "labels": torch.tensor([lab + [IGNORE_INDEX] * (longest - len(lab)) for _, lab in rows]),
            "attention_mask": torch.tensor([[1] * len(r) + [0] * (longest - len(r)) for r, _ in rows]),
        }
        return {key: value.to(ids.device) for key, value in batch.items()}


def build_trainer(parts: StageParts) -> DistillTrainer:
    from lmforge.data.collator import pad_token_id

    cfg = parts.cfg
    return DistillTrainer(
        **trainer_kwargs(parts), distill=cfg.distill, teacher=parts.models["teacher"],
        pad_token_id=pad_token_id(parts.tokenizer), max_new_tokens=cfg.grpo.max_completion_length,
    )  # fmt: skip


STAGE = Stage(
    name="distill",
    encoding=SUPERVISED,
    collator=padding_collator,
    build_trainer=build_trainer,
    check=check_distill,
    load_models=load_teacher,
)
