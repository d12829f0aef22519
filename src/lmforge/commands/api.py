"""`lmforge api`: an OpenAI-compatible server (``/v1/chat/completions``, ``/v1/completions``), or
with ``stage: rm`` a reward model answering LLaMA-Factory's ``/v1/score/evaluation``.

Settings: ``API_HOST`` (127.0.0.1), ``API_PORT`` (8000), ``API_KEY`` (Bearer auth when set),
``MAX_CONCURRENT`` (queued + running requests before 503), ``MAX_BATCH_SIZE`` (rows decoded
together); ``--host``/``--port`` override the environment.
"""

from __future__ import annotations

import argparse

from lmforge.commands import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("api", help="serve the model with an OpenAI-compatible API")
    add_config_arguments(parser)
    parser.add_argument("--host", help="address to bind (default: API_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: API_PORT or 8000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmforge.config import load_config
    from lmforge.infer.api_schemas import ApiSettings
    from lmforge.infer.api_server import bind_port, serve
    from lmforge.infer.engine import build_engine

    settings = ApiSettings.from_env(host=args.host, port=args.port)
    cfg = load_config(args.config, args.overrides)
    sock = bind_port(settings.host, settings.port)  # a busy port fails before the weights load
    try:
        if cfg.method.stage == "rm":  # a reward model: POST /v1/score/evaluation (infer/scoring.py)
            from lmforge.infer.scoring import build_scorer

            engine = build_scorer(cfg)
        else:
            engine = build_engine(cfg, max_batch_size=settings.max_batch_size, max_queue=settings.max_concurrent)
        try:
            serve(engine, settings, sock)
        finally:
            engine.close()
    finally:
        sock.close()
    return 0
