"""`lmforge webchat`: a browser chat page (Gradio) on 127.0.0.1 by default."""

from __future__ import annotations

import argparse

from lmforge.commands import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("webchat", help="chat with a model in the browser (Gradio)")
    add_config_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmforge.config import load_config
    from lmforge.infer.api_server import bind_port
    from lmforge.infer.engine import build_engine
    from lmforge.infer.webchat import launch

    cfg = load_config(args.config, args.overrides)
    bind_port(args.host, args.port, env="").close()  # a busy port fails before the weights load
    engine = build_engine(cfg)
    try:
        launch(engine, args.host, args.port)
    finally:
        engine.close()
    return 0
