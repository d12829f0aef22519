"""``run_predictions(cfg)``: answer every ``eval_dataset`` record and score the answers, instead
of training (``predicts_only``) or with the model a training run just saved (``predict_trained``).

The prompt of a record is its conversation up to the last assistant turn, rendered with the run's
template (as training rendered it); the reference is that last assistant turn. Answers come from
the inference engine (continuous batching), decoded with the generate group's settings and the
run's ``seed``. Writes, in ``output_dir``:

- ``generated_predictions.jsonl``: one ``{"prompt", "predict", "label"}`` per record, in order
  (``prompt`` is the rendered prompt text, special tokens included, as LLaMA-Factory writes it);
- ``predict_results.json``: ``predict_bleu-4``, ``predict_rouge-1/2/l`` (eval/similarity.py),
  the number of samples and the wall time.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from lmforge.config import RunConfig
from lmforge.errors import LmforgeError
from lmforge.eval.similarity import similarity

OUTPUTS = ("generated_predictions.jsonl", "predict_results.json")


def check_predict_config(cfg: RunConfig) -> None:
    """What a predict run needs, checked before anything loads or is written."""
    if not cfg.eval.do_predict:
        raise LmforgeError(
            "predict_with_generate applies to prediction runs, and do_predict is off",
            "set do_predict: true (with eval_dataset), or remove predict_with_generate",
        )
    if not cfg.data.eval_dataset:
        raise LmforgeError(
            "do_predict needs eval_dataset: the records to answer", "set eval_dataset: a name or a file path"
        )
    if not cfg.eval.predict_with_generate:
        raise LmforgeError(
            "do_predict needs predict_with_generate: true (lmforge predicts by generating answers)",
            "set predict_with_generate: true",
        )
    if cfg.method.stage != "sft":
        raise LmforgeError(f"do_predict works with stage: sft (it is {cfg.method.stage!r})", "set stage: sft")
    out = Path(cfg.train.output_dir)
    if out.exists() and not out.is_dir():
        raise LmforgeError(f"output_dir {out} is a file, not a directory", "choose another output_dir")
    taken = [name for name in OUTPUTS if (out / name).exists()]
    if taken and not cfg.train.overwrite_output_dir:
        raise LmforgeError(
            f"output_dir {out} already holds {taken[0]}; nothing was changed",
            "choose another output_dir, or set overwrite_output_dir: true",
        )


def predicts_only(cfg: RunConfig) -> bool:
    """do_predict trains first only with an explicit ``do_train: true`` (LLaMA-Factory's predict
    configs leave do_train unset, and its default is false)."""
    return cfg.eval.do_predict and not (cfg.train.do_train and cfg.explicitly_set("do_train"))


def trained_model_config(cfg: RunConfig, output_dir: Path) -> RunConfig:
    """The config of the model a training run saved in ``output_dir``: its LoRA adapter on top of
    the adapters it was trained on (merged ones, as methods.py merges them), or its full weights."""
    model = cfg.model
    if cfg.method.finetuning_type == "lora":
        adapters = list(model.adapter_name_or_path or [])
        kept = adapters if cfg.method.create_new_adapter else adapters[:-1]
        model = model.model_copy(update={"adapter_name_or_path": [*kept, str(output_dir)]})
    else:
        model = model.model_copy(update={"model_name_or_path": str(output_dir), "adapter_name_or_path": None})
    return cfg.model_copy(update={"model": model})


def predict_trained(cfg: RunConfig, output_dir: Path) -> Path:
    """Predictions of the model a training run just saved (checked before it trained)."""
    return run_predictions(trained_model_config(cfg, output_dir), checked=True)


def run_predictions(cfg: RunConfig, engine: Any = None, *, checked: bool = False) -> Path:
    """Predictions for ``eval_dataset``; ``engine`` reuses a loaded one (else one is built from cfg)."""
    from lmforge.infer.engine import build_engine
    from lmforge.infer.params import SamplingParams

    if not checked:
        check_predict_config(cfg)
    records = _eval_records(cfg)
    own_engine = engine is None
    engine = engine or build_engine(cfg, max_batch_size=_batch_size(cfg))
    try:
        prompts, labels = [], []
        for index, record in enumerate(records):
            messages = record["messages"]
            if not messages or messages[-1]["role"] != "assistant":
                raise LmforgeError(f"eval_dataset record {index} has no assistant answer to compare with")
            prompts.append(engine.encode_chat(messages[:-1], record.get("system"), record.get("tools")))
            labels.append(messages[-1]["content"])
        params = SamplingParams.from_config(cfg.generate).updated(seed=cfg.train.seed)
        start = time.perf_counter()
        answers = generate_all(engine, prompts, params)
        seconds = time.perf_counter() - start
    finally:
        if own_engine:
            engine.close()
    metrics = similarity(answers, labels)
    metrics.update({"predict_samples": len(answers), "predict_runtime": round(seconds, 4)})
    return _write(cfg, engine.tokenizer, prompts, answers, labels, metrics)


def _eval_records(cfg: RunConfig) -> Any:
    """The eval_dataset records, read by the data pipeline as a training set would be (formats,
    dataset_info, max_samples); a predict-only run has no ``dataset``."""
    from lmforge.data.pipeline import load_records

    data = cfg.data.model_copy(update={"dataset": cfg.data.eval_dataset, "eval_dataset": None, "val_size": 0.0})
    records, _ = load_records(cfg.model_copy(update={"data": data}))
    return records


def _batch_size(cfg: RunConfig) -> int:
    """per_device_eval_batch_size when the user set it; else the engine's usual 16 rows."""
    return cfg.train.per_device_eval_batch_size if cfg.explicitly_set("per_device_eval_batch_size") else 16


def generate_all(engine: Any, prompts: list[list[int]], params: Any, window: int = 32) -> list[str]:
    """Every prompt's answer, in order; at most ``window`` requests in flight (the engine's queue
    is bounded), so the engine batches them continuously."""
    answers: list[str | None] = [None] * len(prompts)
    errors: list[str] = []
    finished = threading.Semaphore(0)

    def sink_for(index: int) -> Any:
        parts: list[str] = []

        def sink(event: Any) -> None:
            parts.append(event.text)
            if event.finish_reason is not None:
                if event.error:
                    errors.append(event.error)
                answers[index] = "".join(parts)
                finished.release()

        return sink

    waited = 0
    for index, prompt in enumerate(prompts):
        if index - waited >= window:
            finished.acquire()
            waited += 1
        engine.submit(prompt, params, sink_for(index))
    for _ in range(len(prompts) - waited):
        finished.acquire()
    if errors:
        raise LmforgeError(f"generation failed: {errors[0]}")
    return [answer or "" for answer in answers]


def _write(
    cfg: RunConfig, tokenizer: Any, prompts: list[list[int]], answers: list[str], labels: list[str], metrics: dict
) -> Path:
    out = Path(cfg.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {"prompt": tokenizer.decode(p, skip_special_tokens=False), "predict": a, "label": lb}, ensure_ascii=False
        )
        for p, a, lb in zip(prompts, answers, labels)
    ]
    _atomic(out / "generated_predictions.jsonl", "".join(line + "\n" for line in lines))
    _atomic(out / "predict_results.json", json.dumps(metrics, indent=2) + "\n")
    return out


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
