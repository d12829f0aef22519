"""``run_training(cfg)``: one run of a causal-LM stage (pt, sft), top to bottom.

config → output dir → tokenizer + template → data → template checks → model + method → trainer
→ train → save. Every step is a call with a clear name; nothing happens at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmforge.config import RunConfig
from lmforge.train.outputs import prepare_output_dir, save_run_config, write_json

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    global_step: int = 0


def run_training(cfg: RunConfig) -> TrainResult:
    """Everything that can be validated is, before anything is written or any weight loads."""
    from transformers import set_seed

    from lmforge.train.reliability import check_output_dir, requested_trackers, resolve_resume_checkpoint

    resume = resolve_resume_checkpoint(cfg)
    check_output_dir(cfg, resuming=resume is not None)
    requested_trackers(cfg)
    set_seed(cfg.train.seed)
    tokenizer, template, own_chat_template = _setup_tokenizer_and_template(cfg)
    data = _setup_data(cfg, tokenizer, template)
    output_dir = prepare_output_dir(cfg, resuming=resume is not None)
    save_run_config(cfg, output_dir)
    _check_template(cfg, tokenizer, template, output_dir, own_chat_template)
    model = _setup_model(cfg, tokenizer, template)
    trainer = _setup_trainer(cfg, model, tokenizer, data, output_dir)
    result = trainer.train(resume_from_checkpoint=resume)
    return _save_outputs(cfg, trainer, result, output_dir)


def _setup_tokenizer_and_template(cfg: RunConfig) -> tuple[Any, Any, str | None]:
    """The tokenizer carries the training template as its chat template, so every checkpoint and
    the final output render prompts exactly as training did. The tokenizer's own template is
    returned too: the pre-flight checks compare the two."""
    from lmforge.data.templates import get_template
    from lmforge.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(cfg.model)
    template = get_template(cfg.data.template, tokenizer, default_system=cfg.data.default_system)
    own_chat_template = tokenizer.chat_template
    tokenizer.chat_template = template.chat_template_jinja(tokenizer)
    return tokenizer, template, own_chat_template


def _setup_data(cfg: RunConfig, tokenizer: Any, template: Any) -> Any:
    """Tokenized data, cached by fingerprint and reused by the next run."""
    from lmforge.data.pipeline import build_datasets

    data = build_datasets(cfg, tokenizer, template)
    for line in data.report.lines():
        logger.info(line)
    return data


def _check_template(
    cfg: RunConfig, tokenizer: Any, template: Any, output_dir: Path, own_chat_template: str | None
) -> None:
    """Pre-flight template checks (docs/templates.md); strict mode stops here, before weights load."""
    if cfg.method.stage != "sft" or cfg.data.template_checks == "off":
        return
    from lmforge.doctor.preflight import preflight

    preflight(cfg, tokenizer, template, output_dir, own_chat_template=own_chat_template)


def _setup_model(cfg: RunConfig, tokenizer: Any, template: Any) -> Any:
    """Weights with the method applied; generation stops at the template's end of turn."""
    from lmforge.models.loader import load_model

    model = load_model(cfg, tokenizer, trainable=True)
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        eos = generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        for token_id in [tokenizer.eos_token_id, *template.eot_token_ids(tokenizer)]:
            if token_id is not None and token_id not in eos_ids:
                eos_ids.append(token_id)
        generation_config.eos_token_id = eos_ids[0] if len(eos_ids) == 1 else eos_ids
    return model


def _setup_trainer(cfg: RunConfig, model: Any, tokenizer: Any, data: Any, output_dir: Path) -> Any:
    from lmforge.data.collator import build_collator
    from lmforge.train.arguments import build_training_arguments
    from lmforge.train.callbacks import JsonlLogCallback
    from lmforge.train.reliability import reliability_callbacks
    from lmforge.train.trainer import LmforgeTrainer

    # The signal callback (last of the reliability ones) must run after every other callback.
    callbacks: list[Any] = [
        JsonlLogCallback(str(output_dir)),
        *reliability_callbacks(cfg, datasets={"train": data.train, "eval": data.eval}),
    ]
    return LmforgeTrainer(
        model=model,
        args=build_training_arguments(cfg),
        train_dataset=data.train,
        eval_dataset=data.eval,
        data_collator=build_collator(cfg, tokenizer),
        processing_class=tokenizer,
        callbacks=callbacks,
        loraplus_lr_ratio=cfg.method.loraplus_lr_ratio,
        optimizer_config=cfg.optimizer,
        sparse_logits=cfg.train.sparse_logits,
        skip_nonfinite_steps=cfg.train.skip_nonfinite_steps,
    )


def _save_outputs(cfg: RunConfig, trainer: Any, result: Any, output_dir: Path) -> TrainResult:
    """Weights or adapter (safetensors), tokenizer with chat template, generation config, metrics, plot."""
    from lmforge.train.callbacks import plot_loss

    trainer.save_model(str(output_dir))
    model = trainer.model
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base, "generation_config", None) is not None:
        base.generation_config.save_pretrained(str(output_dir))
    metrics = dict(result.metrics)
    trainer.log_metrics("train", metrics)
    write_json(output_dir / "train_results.json", metrics)
    if trainer.args.do_eval and trainer.eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        write_json(output_dir / "eval_results.json", eval_metrics)
        metrics.update(eval_metrics)
    write_json(output_dir / "all_results.json", metrics)
    trainer.state.save_to_json(str(output_dir / "trainer_state.json"))
    if cfg.train.plot_loss:
        picture = plot_loss(output_dir)
        if picture is not None:
            logger.info("loss curve: %s", picture)
    logger.info("saved to %s", output_dir)
    return TrainResult(output_dir=output_dir, metrics=metrics, global_step=result.global_step)
