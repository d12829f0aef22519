"""Console logging for commands: lmforge's own messages at INFO, libraries' at WARNING."""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is at each message, not as it was when the handler was made:
    commands run many times in one process (tests, the web UI) with stderr swapped in between, and a
    handler holding a closed stream prints a logging traceback instead of the message."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def setup_logging(level: int = logging.INFO) -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("[lmforge] %(message)s"))
    root = logging.getLogger("lmforge")
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_warning()
    except ImportError:
        pass
