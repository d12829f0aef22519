"""`lmforge train cfg.yaml [key=value ...]`: run a training stage."""

from __future__ import annotations

import argparse

from lmforge.commands import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model (stages pt, sft)")
    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmforge.config import load_config
    from lmforge.logs import setup_logging
    from lmforge.train.run import run_training

    overrides = list(args.overrides) + (["resume_from_checkpoint=true"] if args.resume else [])
    cfg = load_config(args.config, overrides)
    setup_logging()
    result = run_training(cfg)
    print(f"lmforge: training finished at step {result.global_step}; outputs in {result.output_dir}")
    return 0
