"""`lmforge train cfg.yaml [key=value ...]`: run a training stage."""

from __future__ import annotations

import argparse

from lmforge.commands import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model (stages pt, sft)")
    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    parser.set_defaults(func=run, usage_error=parser.error)


def run(args: argparse.Namespace) -> int:
    if args.config is None and not args.overrides:
        # Defaults alone train nothing (no dataset): show how to call it instead of failing later.
        args.usage_error("give a YAML config (lmforge train cfg.yaml) or settings (key=value ...)")
    from lmforge.config import load_config
    from lmforge.logs import setup_logging

    overrides = list(args.overrides) + (["resume_from_checkpoint=true"] if args.resume else [])
    cfg = load_config(args.config, overrides)  # config mistakes show before the slow imports below
    from lmforge.launch import launch_if_needed  # docs/distributed.md: torchrun when asked or >1 GPU

    code = launch_if_needed(cfg, ["train", *([args.config] if args.config else []), *overrides])
    if code is not None:
        return code
    from lmforge.eval.predict import predicts_only
    from lmforge.train.run import run_training

    setup_logging()
    result = run_training(cfg)
    from lmforge.distributed import rank

    if rank() != 0:  # several processes: the main one speaks for the job
        return 0
    if not predicts_only(cfg):
        print(f"lmforge: training finished at step {result.global_step}; outputs in {result.output_dir}")
    if cfg.eval.do_predict:  # eval/predict.py
        print(f"lmforge: predictions in {result.output_dir}")
    return 0
