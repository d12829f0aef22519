"""`lmforge eval cfg.yaml task=mmlu_test [key=value ...]`: score a multiple-choice benchmark.

With ``do_predict: true`` and no ``task`` it writes generated predictions for ``eval_dataset``
instead (as ``lmforge train`` does for a predict-only config).
"""

from __future__ import annotations

import argparse

from lmforge.commands import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate on a benchmark (MMLU / C-Eval / CMMLU layout)")
    add_config_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmforge.config import load_config
    from lmforge.errors import LmforgeError
    from lmforge.logs import setup_logging

    cfg = load_config(args.config, args.overrides)
    setup_logging()
    if cfg.eval.task is not None and (cfg.eval.do_predict or cfg.eval.predict_with_generate):
        raise LmforgeError("task and do_predict are both set: lmforge eval runs one of them", "remove one")
    if cfg.eval.task is None and (cfg.eval.do_predict or cfg.eval.predict_with_generate):
        from lmforge.eval.predict import run_predictions

        out = run_predictions(cfg)
        print(f"lmforge: predictions in {out}")
        return 0
    if cfg.eval.task is None:
        raise LmforgeError(
            "lmforge eval needs a task", "set task: <benchmark>_<split> (e.g. mmlu_test), or do_predict: true"
        )
    if cfg.model.infer_backend != "hf":
        raise LmforgeError(
            f"benchmarks are scored with transformers, not infer_backend: {cfg.model.infer_backend}",
            "set infer_backend: hf for lmforge eval",
        )
    from lmforge.eval.multiple_choice import run_benchmark

    results = run_benchmark(cfg)
    print(results.table())
    if cfg.eval.save_dir:
        print(f"lmforge: results in {cfg.eval.save_dir}")
    return 0
