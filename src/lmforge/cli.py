"""The only place that parses argv. Each command lives in ``lmforge.commands.<name>`` and exposes
``register(subparsers)``; heavy imports happen inside the command so ``--help`` stays instant.

User mistakes (LmforgeError) print as one line and exit 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from lmforge import __version__
from lmforge.errors import LmforgeError

COMMANDS = ("train", "data", "doctor", "chat", "api", "webchat", "export", "config")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmforge", description="Train, serve and export language models from one YAML file."
    )
    parser.add_argument("--version", action="version", version=f"lmforge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"lmforge.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("LMFORGE_DEBUG") == "1"
    if "--debug" in argv:
        argv.remove("--debug")
    # peft 0.21 reads a property transformers 5.23 deprecated; the warning says nothing to users.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    config = getattr(args, "config", None)
    if config and "=" in config and not os.path.exists(config):
        args.config, extra = None, [config, *extra]  # `lmforge chat key=value` with no YAML file
    args.overrides = extra
    try:
        return int(args.func(args) or 0)
    except LmforgeError as err:
        if debug:
            raise
        print(f"lmforge: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lmforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
