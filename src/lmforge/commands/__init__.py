"""One module per CLI command, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """A YAML path plus LLaMA-Factory-style overrides (key=value, --key value)."""
    parser.add_argument("config", nargs="?", help="YAML config file")
    parser.set_defaults(accepts_overrides=True)
    parser.epilog = "Any config key may follow as key=value or --key value (see `lmforge config`)."
