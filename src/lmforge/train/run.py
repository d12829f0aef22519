"""``run_training(cfg)``: one run of any stage (train/stages/: pt, sft, ...), top to bottom.

stage lookup → config checks (the stage's too) → training arguments → tokenizer + template → data
→ template checks → model + method → the stage's other models → trainer → output dir → train →
save. Every check that can fail (output_dir, resume, trackers, eval data, adapters, training
arguments, template checks, lora_target) runs before the first byte is written to output_dir, so a
failed run never blocks its own fixed rerun. The training arguments exist before any weight loads;
only the main process (``args.should_save``) writes. Nothing happens at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmforge.config import RunConfig
from lmforge.errors import LmforgeError
from lmforge.train.isolation import process_state_scope
from lmforge.train.outputs import prepare_output_dir, save_run_config, write_json

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    global_step: int = 0
    already_finished: bool = False  # --resume found the run done: nothing was trained or written


@process_state_scope()  # signal handlers, environment, logging, warnings... restored, also on error
def run_training(cfg: RunConfig) -> TrainResult:
    """Everything that can be validated is, before anything is written or any weight loads."""
    from transformers import set_seed

    from lmforge.eval.token_accuracy import check_compute_accuracy
    from lmforge.train.arguments import build_training_arguments
    from lmforge.train.relaunch import finished_run, restarts_dead_run
    from lmforge.train.reliability import check_output_dir, requested_trackers, resolve_resume_checkpoint
    from lmforge.train.stages import StageParts, get_stage

    if cfg.eval.do_predict or cfg.eval.predict_with_generate:  # eval/predict.py: instead of or after training
        from lmforge.eval.predict import check_predict_config, predicts_only, run_predictions

        check_predict_config(cfg)
        if predicts_only(cfg):
            return TrainResult(output_dir=run_predictions(cfg, checked=True))
    finished = finished_run(cfg)
    if finished is not None:
        step, metrics = finished
        logger.info("%s holds a finished run (step %d): nothing to resume, nothing changed", cfg.train.output_dir, step)
        return TrainResult(Path(cfg.train.output_dir), metrics, step, already_finished=True)
    stage = get_stage(cfg.method.stage)
    resume = resolve_resume_checkpoint(cfg)
    restart = restarts_dead_run(cfg, resume)
    check_output_dir(cfg, resuming=resume is not None or restart)
    requested_trackers(cfg)
    _check_eval_data(cfg)
    check_compute_accuracy(cfg)
    _check_adapters(cfg)
    stage.check(cfg)
    args = build_training_arguments(cfg)  # before any weight loads (ZeRO-3 partitions at load time)
    cluster = _check_cluster(cfg, args, resuming=resume is not None)
    set_seed(cfg.train.seed)
    tokenizer, template, own_chat_template = _setup_tokenizer_and_template(cfg)
    data = _setup_data(cfg, tokenizer, template)  # on the main process first; the others load its cache
    checks = _check_template(cfg, stage, tokenizer, template, own_chat_template)
    model = _setup_model(cfg, stage, tokenizer, template)
    parts = StageParts(cfg, args, model, tokenizer, template, data, _callbacks(cfg, data, cluster))
    parts.models = stage.load_models(cfg, tokenizer)  # reference / reward / teacher: frozen
    stage.prepare_data(parts)  # e.g. reference log-probs, from the weights before any resume
    trainer = stage.build_trainer(parts)
    output_dir = Path(cfg.train.output_dir)
    if args.should_save:  # the main process alone writes output_dir
        output_dir = prepare_output_dir(cfg, resuming=resume is not None, replace=True if restart else None)
        save_run_config(cfg, output_dir)
        if checks is not None:
            from lmforge.doctor.report import write_report

            write_report(checks, output_dir)
    result = _train(trainer, resume)
    outcome = _save_outputs(cfg, trainer, result, output_dir)
    if cfg.eval.do_predict:
        from lmforge.eval.predict import predict_trained

        del trainer, model, parts  # the engine loads the saved model: free the training copy first
        predict_trained(cfg, output_dir)
    return outcome


def _check_eval_data(cfg: RunConfig) -> None:
    """Evaluating during training needs eval data; transformers would say so only after the model loaded."""
    if cfg.train.eval_strategy == "no" or cfg.data.eval_dataset or cfg.data.val_size > 0:
        return
    raise LmforgeError(
        f"eval_strategy: {cfg.train.eval_strategy} needs eval data, but there is none",
        "set eval_dataset or val_size (e.g. val_size: 0.1), or eval_strategy: no",
    )


def _check_adapters(cfg: RunConfig) -> None:
    """Each adapter_name_or_path folder must hold a peft adapter (peft's own error names neither)."""
    for name in cfg.model.adapter_name_or_path or []:
        path = Path(name)
        if path.is_dir() and not (path / "adapter_config.json").is_file():
            raise LmforgeError(
                f"adapter_name_or_path: {path} has no adapter_config.json, so it is not a LoRA adapter folder",
                "point it at the output_dir of a LoRA run (or one of its checkpoint-N folders)",
            )
        weights = ("adapter_model.safetensors", "adapter_model.bin")
        if path.is_dir() and not any((path / weight).is_file() for weight in weights):
            raise LmforgeError(
                f"adapter_name_or_path: {path} has adapter_config.json but no adapter_model.safetensors",
                "the adapter was not saved completely: use its run's output_dir or a checkpoint-N folder",
            )
        if not path.exists() and not _looks_like_hub_id(name):
            raise LmforgeError(
                f"adapter_name_or_path: {path} does not exist",
                "point it at the output_dir of a LoRA run, or a Hugging Face Hub adapter id (owner/name)",
            )


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~"))


def _setup_tokenizer_and_template(cfg: RunConfig) -> tuple[Any, Any, str | None]:
    """The tokenizer carries the training template as its chat template, so every checkpoint and
    the final output render prompts exactly as training did (stage pt on raw text gets no template).
    The tokenizer's own template is returned too: the pre-flight checks compare the two."""
    from lmforge.models.tokenizer import build_tokenizer_and_template

    return build_tokenizer_and_template(cfg)


def _check_cluster(cfg: RunConfig, args: Any, resuming: bool) -> dict[str, Any] | None:
    """Several processes: every rank agrees on the job, can write, runs the same software
    (distributed/cluster.py); ranks on several nodes must share output_dir when each writes its
    part of a checkpoint (DeepSpeed) or reads one back (resume)."""
    if args.world_size <= 1:
        return None
    import os

    from lmforge.distributed.cluster import check_cluster

    nodes = args.world_size > int(os.environ.get("LOCAL_WORLD_SIZE", args.world_size))
    shared = nodes and (bool(args.deepspeed) or resuming)
    return check_cluster(cfg, timeout_s=cfg.train.rdzv_timeout, shared_output=shared)


def _setup_data(cfg: RunConfig, tokenizer: Any, template: Any) -> Any:
    """Tokenized data, cached by fingerprint and reused by the next run.

    Prepared once: the main process tokenizes and writes the cache while the others wait, then
    they load it (they never rebuild it, even with overwrite_cache) — distributed.prepare_once.
    """
    from lmforge.data.pipeline import build_datasets
    from lmforge.distributed import prepare_once

    def build(main: bool) -> Any:
        loads = cfg if main else cfg.model_copy(update={"data": cfg.data.model_copy(update={"overwrite_cache": False})})
        return build_datasets(loads, tokenizer, template)

    data = prepare_once(build)
    for line in data.report.lines():
        logger.info(line)
    return data


def _check_template(cfg: RunConfig, stage: Any, tokenizer: Any, template: Any, own_chat_template: str | None) -> Any:
    """Pre-flight template checks (docs/templates.md); strict mode stops here, before weights load.

    The report stays in memory: it is written to output_dir once every check has passed.
    """
    if not stage.template_checks or cfg.data.template_checks == "off":
        return None
    from lmforge.data.pipeline import load_records
    from lmforge.doctor.checks import run_template_checks
    from lmforge.doctor.report import enforce

    train, _ = load_records(cfg)
    report = run_template_checks(cfg, tokenizer, template, train, own_chat_template=own_chat_template)
    enforce(report)
    return report


def _setup_model(cfg: RunConfig, stage: Any, tokenizer: Any, template: Any) -> Any:
    """Weights with the method applied; generation stops at the template's end of turn (if any)."""
    from lmforge.models.loader import load_model

    model = load_model(cfg.model, tokenizer, train=cfg.train, method=cfg.method, head=stage.head)
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        eos = generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        end_of_turn = template.eot_token_ids(tokenizer) if template is not None else []
        for token_id in [tokenizer.eos_token_id, *end_of_turn]:
            if token_id is not None and token_id not in eos_ids:
                eos_ids.append(token_id)
        generation_config.eos_token_id = eos_ids[0] if len(eos_ids) == 1 else eos_ids
    return model


def _callbacks(cfg: RunConfig, data: Any, cluster: dict[str, Any] | None = None) -> list[Any]:
    """Every stage's callbacks; the signal callback (last of the reliability ones) runs after all others."""
    from lmforge.train.callbacks import JsonlLogCallback, StopAtTargetCallback
    from lmforge.train.reliability import reliability_callbacks

    return [
        StopAtTargetCallback(),  # first: it stops a resume at its target before anything else begins
        JsonlLogCallback(cfg.train.output_dir),
        *reliability_callbacks(cfg, datasets={"train": data.train, "eval": data.eval}, cluster=cluster),
    ]


def _train(trainer: Any, resume: str | None) -> Any:
    """Train; a checkpoint already at the step target (the final save was cut off) trains no more."""
    from transformers.trainer_utils import TrainOutput

    from lmforge.train.callbacks import TargetAlreadyReached

    try:
        return trainer.train(resume_from_checkpoint=resume)
    except TargetAlreadyReached as done:
        logger.info("%s is at step %d of %d: training was complete; writing the final outputs only", resume,
                    done.step, done.target)  # fmt: skip
        return TrainOutput(done.step, 0.0, {"epoch": trainer.state.epoch, "resumed_complete_from": resume})
    except RuntimeError as err:
        from lmforge.distributed import collective_failure

        failure = collective_failure(err, trainer.args.ddp_timeout)
        if failure is None:
            raise
        raise failure from err


def _save_outputs(cfg: RunConfig, trainer: Any, result: Any, output_dir: Path) -> TrainResult:
    """Weights or adapter (safetensors), tokenizer with chat template, generation config, metrics, plot.

    Every process takes part in saving the model (sharded weights gather) and in the evaluation;
    only the main one writes files.
    """
    from lmforge.train.callbacks import plot_loss

    trainer.save_model(str(output_dir))
    main = trainer.args.should_save
    model = trainer.model
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if main and getattr(base, "generation_config", None) is not None:
        base.generation_config.save_pretrained(str(output_dir))
    metrics = dict(result.metrics)
    trainer.log_metrics("train", metrics)
    if trainer.args.do_eval and trainer.eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        metrics.update(eval_metrics)
        if main:
            write_json(output_dir / "eval_results.json", eval_metrics)
    if main:
        write_json(output_dir / "train_results.json", dict(result.metrics))
        write_json(output_dir / "all_results.json", metrics)
        trainer.state.save_to_json(str(output_dir / "trainer_state.json"))
        if cfg.train.plot_loss:
            picture = plot_loss(output_dir)
            if picture is not None:
                logger.info("loss curve: %s", picture)
        logger.info("saved to %s", output_dir)
    return TrainResult(output_dir=output_dir, metrics=metrics, global_step=result.global_step)
