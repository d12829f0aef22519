"""Console logging for commands: lmforge's own messages at INFO, libraries' at WARNING."""

from __future__ import annotations

import logging


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
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
