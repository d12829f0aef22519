"""``PpoTrainer``: a transformers Trainer whose step is one PPO iteration (Ouyang et al. 2022's RL
stage; the math is in train/ppo/core.py).

One Trainer step (``global_step``, what ``max_steps``, ``save_steps`` and the learning-rate schedule
count) takes the prompts of ``gradient_accumulation_steps`` dataloader batches of
``ppo_buffer_size x per_device_train_batch_size`` prompts each (LLaMA-Factory's rollout size), then:

1. rollout: sample one answer per prompt from the live policy (train/ppo/rollout.py), eval mode;
2. score the answers (train/ppo/scores.py), optionally normalised (``ppo_score_norm``);
3. with no gradients: old log-probabilities and values (policy + value head), reference
   log-probabilities (the base with the adapter disabled for LoRA, else a frozen model);
   per-token rewards = score at the last token - beta KL (optionally whitened), GAE advantages
   (whitened) and returns;
4. ``ppo_epochs`` passes over the rollout, shuffled (seeded per step) into ``ppo_buffer_size``
   minibatches; each minibatch is ``gradient_accumulation_steps`` forward/backward chunks of
   ``per_device_train_batch_size`` rows and one optimizer update (gradients clipped over policy and
   value head together);
5. the adaptive KL coefficient moves towards ``ppo_target``.

Optimizer stepping: every update of the iteration happens inside ``training_step``; it ends with
the gradients set to None, so the Trainer's own optimizer step after it touches no parameter (torch
optimizers skip parameters without a gradient) and only advances the learning-rate schedule and
``global_step``. Nothing is left accumulated across steps, and a checkpoint (saved after the step)
holds a consistent policy, value head, optimizer, KL coefficient and score moments. The logged
``grad_norm`` is the mean pre-clip norm of the iteration's updates.

Exact resume: the prompt order is the Trainer's (seeded sampler, batches skipped on resume); each
answer is sampled with a generator seeded from (seed, step, row) and each pass's shuffle from
(seed, step, pass), so a resumed run samples and updates exactly as the uninterrupted one. The
value head, KL coefficient and score moments are saved in every checkpoint
(``value_head.safetensors``, ``ppo_state.json``) and loaded before ``train`` resumes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from lmforge.atomic import atomic_write_json
from lmforge.infer.params import SamplingParams
from lmforge.train.ppo import core
from lmforge.train.ppo.rollout import row_seed, sample_answers
from lmforge.train.ppo.scores import Rollout
from lmforge.train.ppo.value_head import ValueHead
from lmforge.train.trainer import LmforgeTrainerMixin

PPO_STATE_FILE = "ppo_state.json"


class PpoSteps(Trainer):
    """The PPO iteration as the Trainer's step; mix ``LmforgeTrainerMixin`` in before it."""

    def __init__(
        self,
        *args: Any,
        method: Any,
        sampling: SamplingParams,
        scorer: Any,
        eos_ids: set[int],
        ref_model: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.method = method
        self.sampling = sampling
        self.scorer = scorer
        self.eos_ids = eos_ids
        self.ref_model = ref_model.to(self.args.device) if ref_model is not None else None
        policy = self.model
        self.value_head = ValueHead(policy.config.get_text_config().hidden_size).to(self.args.device)
        self.kl_control = core.KLController(
            method.ppo_init_kl_coef, method.ppo_target if method.ppo_adaptive_kl else None, method.ppo_kl_horizon
        )
        self.score_moments = core.RunningMoments()
        self.pad_id = self.processing_class.pad_token_id
        self.context_len = int(getattr(policy.config.get_text_config(), "max_position_embeddings", 0) or 1 << 30)
        self._train_batch_size = self.args.train_batch_size * method.ppo_buffer_size  # prompts per micro-batch
        self.model_accepts_loss_kwargs = False
        self._waiting: list[dict[str, Any]] = []  # micro-batches of the step so far (gradient accumulation)
        self._ppo_logs: dict[str, list[float]] = defaultdict(list)

    # -- optimizer, saving, resume ---------------------------------------------------------------

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        if self.args.should_save:
            folder = Path(output_dir or self.args.output_dir)
            self.value_head.save(folder)
            atomic_write_json(folder / PPO_STATE_FILE, self.ppo_state())

    def ppo_state(self) -> dict[str, Any]:
        moments = self.score_moments
        return {"kl_coef": self.kl_control.value, "score_mean": moments.mean, "score_m2": moments.m2,
                "score_count": moments.count}  # fmt: skip

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any) -> Any:
        """Resuming also restores the value head, the KL coefficient and the score moments."""
        if isinstance(resume_from_checkpoint, str):
            folder = Path(resume_from_checkpoint)
            self.value_head.load(folder)
            state = json.loads((folder / PPO_STATE_FILE).read_text(encoding="utf-8"))
            self.kl_control.value = state["kl_coef"]
            self.score_moments = core.RunningMoments(state["score_mean"], state["score_m2"], state["score_count"])
        return super().train(resume_from_checkpoint, *args, **kwargs)

    # -- one PPO iteration -----------------------------------------------------------------------

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        self._waiting.append(inputs)
        if not self.accelerator.sync_gradients:  # more micro-batches of this step to come
            return torch.zeros((), device=self.args.device)
        batches, self._waiting = self._waiting, []
        prompts = [list(p) for b in batches for p in b["prompt_ids"]]
        references = [r for b in batches for r in b["references"]]
        experience = self._experience(model, prompts, references)
        return self._optimise(model, experience)

    def _experience(self, model: Any, prompts: list[list[int]], references: list[str | None]) -> dict[str, Any]:
        """Rollout, scores, and everything computed without gradients before the updates."""
        policy = self.accelerator.unwrap_model(model)
        step = self.state.global_step + 1
        first = self.args.process_index * len(prompts)  # each data-parallel rank samples its own rows
        policy.eval()
        answers = sample_answers(
            policy, prompts, self.sampling, eos_ids=self.eos_ids, pad_id=self.pad_id,
            seeds=[row_seed(self.args.seed, step, first + row) for row in range(len(prompts))],
            context_len=self.context_len,
        )  # fmt: skip
        rollout = Rollout(prompts, answers, references, self.processing_class)
        raw_scores = self.scorer(rollout).to(self.args.device)
        scores = raw_scores
        if self.method.ppo_score_norm:
            self.score_moments.update(raw_scores)
            scores = self.score_moments.normalize(raw_scores)
        batch = _pack(prompts, answers, self.pad_id, self.args.device)
        chunk = self.args.per_device_train_batch_size
        with torch.no_grad():
            old_logprobs, old_values = self._forward_chunks(model, batch, chunk, values=True)
            ref_logprobs, _ = self._reference_chunks(model, batch, chunk)
        mask = batch["answer_mask"]
        rewards, kl = core.token_rewards(scores, old_logprobs, ref_logprobs, mask, self.kl_control.value)
        if self.method.ppo_whiten_rewards:
            rewards = core.whiten(rewards, mask, shift_mean=False)
        advantages, returns = core.gae(rewards, old_values, mask, self.method.ppo_gamma, self.method.ppo_lam)
        advantages = core.whiten(advantages, mask)
        sequence_kl = kl.sum(1).mean()
        self._record(**{"reward/mean": raw_scores.mean(), "kl": sequence_kl, "kl_coef": self.kl_control.value,
                        "response_length": mask.sum(1).float().mean()})  # fmt: skip
        self.kl_control.update(float(sequence_kl), len(prompts))
        return {**batch, "old_logprobs": old_logprobs, "old_values": old_values, "advantages": advantages,
                "returns": returns}  # fmt: skip

    def _optimise(self, model: Any, experience: dict[str, Any]) -> torch.Tensor:
        """``ppo_epochs`` passes of minibatch updates; returns the mean loss over all chunks."""
        method, args = self.method, self.args
        model.train()
        rows = experience["input_ids"].shape[0]
        minibatches = method.ppo_buffer_size
        chunk = args.per_device_train_batch_size
        step = self.state.global_step + 1
        parameters = [p for p in model.parameters() if p.requires_grad] + list(self.value_head.parameters())
        losses, norms = [], []
        for epoch in range(method.ppo_epochs):
            generator = torch.Generator().manual_seed(row_seed(args.seed + 7919, step, epoch))
            order = torch.randperm(rows, generator=generator)
            for minibatch in order.chunk(minibatches):
                pieces = minibatch.split(chunk)
                for piece in pieces:
                    loss = self._loss(model, _select(experience, piece.to(args.device)))
                    self.accelerator.backward(loss / len(pieces))
                    losses.append(loss.detach())
                if args.max_grad_norm and args.max_grad_norm > 0:
                    norm = torch.nn.utils.clip_grad_norm_(parameters, args.max_grad_norm)
                else:
                    norm = torch.nn.utils.clip_grad_norm_(parameters, float("inf"))
                norms.append(float(norm))
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
        model.zero_grad(set_to_none=True)
        self._record(grad_norm=sum(norms) / len(norms))
        return torch.stack(losses).mean()

    def _loss(self, model: Any, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        method = self.method
        with self.compute_loss_context_manager():
            logprobs, values = self._forward(model, rows, values=True)
        mask = rows["answer_mask"]
        policy = core.policy_loss(logprobs, rows["old_logprobs"], rows["advantages"], mask, method.ppo_cliprange)
        value = core.value_loss(values, rows["old_values"], rows["returns"], mask, method.ppo_cliprange_value)
        self._record(policy_loss=policy.loss.detach(), value_loss=value.detach(),
                     clip_fraction=policy.clip_fraction, approx_kl=policy.approx_kl)  # fmt: skip
        return policy.loss + method.ppo_vf_coef * value

    # -- forward passes --------------------------------------------------------------------------

    def _forward(self, model: Any, rows: dict[str, torch.Tensor], values: bool) -> tuple[torch.Tensor, Any]:
        """Per answer token: log pi(a_t) ``[rows, T]`` and, with ``values``, V(s_t) ``[rows, T]``.

        Position ``start + t`` (start = prompt length - 1) predicts answer token t and holds the
        state s_t the value head reads.
        """
        out = model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"], use_cache=False,
                    output_hidden_states=values)  # fmt: skip
        positions = rows["positions"]
        logits = out.logits.gather(1, positions[..., None].expand(-1, -1, out.logits.shape[-1]))
        logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, rows["answers"][..., None]).squeeze(-1)
        if not values:
            return logprobs * rows["answer_mask"], None
        hidden = out.hidden_states[-1]
        states = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))
        return logprobs * rows["answer_mask"], self.value_head(states) * rows["answer_mask"]

    def _forward_chunks(self, model: Any, batch: dict[str, torch.Tensor], chunk: int, values: bool) -> Any:
        logprobs, all_values = [], []
        with self.compute_loss_context_manager():
            for index in torch.arange(batch["input_ids"].shape[0], device=self.args.device).split(chunk):
                lp, v = self._forward(model, _select(batch, index), values)
                logprobs.append(lp)
                all_values.append(v)
        return torch.cat(logprobs), (torch.cat(all_values) if values else None)

    def _reference_chunks(self, model: Any, batch: dict[str, torch.Tensor], chunk: int) -> Any:
        """log pi_ref: a frozen reference model, or the policy with its adapter disabled (LoRA)."""
        if self.ref_model is not None:
            return self._forward_chunks(self.ref_model, batch, chunk, values=False)
        with self.accelerator.unwrap_model(model).disable_adapter():
            return self._forward_chunks(model, batch, chunk, values=False)

    # -- logging ---------------------------------------------------------------------------------

    def _record(self, **values: torch.Tensor | float) -> None:
        for key, value in values.items():
            self._ppo_logs[key].append(float(value))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Training logs get the PPO metrics averaged over the steps since the last log."""
        if "loss" in logs:
            for key, values in self._ppo_logs.items():
                if values:
                    logs[key] = round(sum(values) / len(values), 6)
            self._ppo_logs.clear()
        super().log(logs, start_time)


def _pack(prompts: list[list[int]], answers: list[list[int]], pad_id: int, device: Any) -> dict[str, torch.Tensor]:
    """prompt + answer rows, right-padded, and the answer tokens left-aligned in ``[rows, T]``."""
    width = max(len(p) + len(a) for p, a in zip(prompts, answers, strict=True))
    longest = max(len(a) for a in answers)
    ids, mask, positions, answer_ids, answer_mask = [], [], [], [], []
    for prompt, answer in zip(prompts, answers, strict=True):
        n = len(prompt) + len(answer)
        ids.append(prompt + answer + [pad_id] * (width - n))
        mask.append([1] * n + [0] * (width - n))
        start = len(prompt) - 1
        positions.append([min(start + t, width - 1) for t in range(longest)])
        answer_ids.append(answer + [pad_id] * (longest - len(answer)))
        answer_mask.append([1.0] * len(answer) + [0.0] * (longest - len(answer)))
    tensors = {"input_ids": ids, "attention_mask": mask, "positions": positions, "answers": answer_ids}
    packed = {key: torch.tensor(value, dtype=torch.long, device=device) for key, value in tensors.items()}
    packed["answer_mask"] = torch.tensor(answer_mask, dtype=torch.float32, device=device)
    return packed


def _select(batch: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    return {key: value[index] for key, value in batch.items()}


class PpoTrainer(LmforgeTrainerMixin, PpoSteps):
    """One PPO iteration per step with lmforge's reliability (checkpoints without pickles, NaN
    guard, step metrics), LoRA+ and optimizers."""

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        """The run's optimizer over the policy (LoRA+ groups included), plus a group for the value
        head at the base learning rate, without weight decay."""
        optimizer = super().create_optimizer(model) if model is not None else super().create_optimizer()
        head = list(self.value_head.parameters())
        if not any(p is head[0] for group in optimizer.param_groups for p in group["params"]):
            optimizer.add_param_group({"params": head, "lr": self.args.learning_rate, "weight_decay": 0.0})
        return optimizer
