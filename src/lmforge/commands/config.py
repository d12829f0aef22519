"""`lmforge config`: every key with its type, default and one line of help."""

from __future__ import annotations

import argparse

from lmforge.config.reference import render_markdown, render_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="list every config key with type, default and help")
    parser.add_argument("--markdown", action="store_true", help="print docs/config.md")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(render_markdown() if args.markdown else render_text(), end="")
    return 0
