"""`lmforge export cfg.yaml export_dir=DIR`: merge adapters into a standalone model directory
(safetensors, sharded by export_size) or a GGUF file with an Ollama Modelfile (docs/export.md).

The output carries the tokenizer with the chat template used in training and a generation config
whose eos includes the end-of-turn token, so it stops when served by any tool that reads them.
"""

from __future__ import annotations

import argparse

from lmforge.commands import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="merge adapters; save safetensors, or GGUF for llama.cpp/Ollama")
    add_config_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmforge.config import load_config
    from lmforge.export.merge import export_model
    from lmforge.logs import setup_logging

    cfg = load_config(args.config, args.overrides)
    setup_logging()
    path = export_model(cfg)
    print(f"lmforge: exported to {path}")
    return 0
