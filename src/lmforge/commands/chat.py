"""`lmforge chat`: talk to a model in the terminal, or answer one ``--query`` for scripts."""

from __future__ import annotations

import argparse

from lmforge.commands import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("chat", help="chat with a model in the terminal (streamed answers)")
    add_config_arguments(parser)
    parser.add_argument("--query", help="ask one question, print the answer and exit")
    parser.add_argument("--system", help="system prompt (default: the config's default_system)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmforge.config import load_config
    from lmforge.errors import LmforgeError
    from lmforge.infer.chat import ChatSession, run_terminal
    from lmforge.infer.engine import build_engine

    cfg = load_config(args.config, args.overrides)
    if args.query is not None and not args.query.strip():
        raise LmforgeError(
            "--query is empty: there is no question to answer",
            'ask one: --query "What is LoRA?", or leave --query out to chat interactively',
        )
    engine = build_engine(cfg, max_batch_size=1, max_queue=2)
    try:
        session = ChatSession(engine, args.system)
        if args.query is not None:
            print(session.ask(args.query), flush=True)
        else:
            run_terminal(session)
    finally:
        engine.close()
    return 0
