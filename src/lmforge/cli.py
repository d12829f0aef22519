"""The only place that parses argv. Each command lives in ``lmforge.commands.<name>`` and exposes
``register(subparsers)``; heavy imports happen inside the command so ``--help`` stays instant.

User mistakes (LmforgeError) print as one line and exit 1; Ctrl-C anywhere prints "interrupted"
and exits 130. ``--debug`` shows the traceback of either.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator

from lmforge import __version__
from lmforge.errors import LmforgeError

COMMANDS = ("train", "eval", "data", "doctor", "chat", "api", "webchat", "export", "config")


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
    from lmforge.launch.torchrun import quiet_node_launcher

    quiet_node_launcher(os.environ, debug)  # before anything imports torch
    with _interrupt_in_this_process_only():
        try:
            return _run(argv, debug)
        except BaseException as err:
            if debug or not _interrupted(err):
                raise
            print("lmforge: interrupted", file=sys.stderr)
            return 130


def _run(argv: list[str], debug: bool) -> int:
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
        if debug or _interrupted(err):
            raise
        from lmforge.launch.worker import report_error  # a worker of lmforge's launcher tells the launcher

        report_error(f"lmforge: error: {err}")
        return 1


def _interrupted(err: BaseException | None) -> bool:
    """A KeyboardInterrupt, or an error raised while unwinding one (datasets' worker pool fails
    to clean up after Ctrl-C with an UnpicklingError whose context is the interrupt)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


@contextlib.contextmanager
def _interrupt_in_this_process_only() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt here and is ignored by forked workers, which this process stops.

    The terminal sends SIGINT to the whole process group: without this, each of datasets' tokenizing
    workers (preprocessing_num_workers) prints its own traceback and dies mid-message. Workers inherit
    the handler by fork; the parent's KeyboardInterrupt then terminates the pool. Only installed over
    Python's default handler (not where SIGINT is ignored, e.g. a background job), and restored after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield
        return
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() == owner:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
