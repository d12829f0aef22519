"""The worker side of a launch: logs that say the rank, and one error line the launcher can show.

Under lmforge's launcher (LMFORGE_LAUNCHER set) a worker's user error goes to torchelastic's
per-worker error file (TORCHELASTIC_ERROR_FILE) and the launcher prints it once per failed rank;
under plain torchrun or accelerate the worker prints it itself, prefixed with its rank.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from lmforge.launch.torchrun import LAUNCHER_ENV


def is_worker() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def setup_worker_logs() -> None:
    """Prefix lmforge's log lines with ``[rank N]`` in a multi-process job (this process only)."""
    if not is_worker():
        return
    label = f"[rank {os.environ.get('RANK', '0')}] "
    factory = logging.getLogRecordFactory()

    def record(*args: object, **kwargs: object) -> logging.LogRecord:
        entry = factory(*args, **kwargs)
        if entry.name.startswith("lmforge") and isinstance(entry.msg, str):
            entry.msg = label + entry.msg
        return entry

    logging.setLogRecordFactory(record)


def report_error(line: str) -> None:
    """Print ``line`` (``lmforge: error: ...``), or hand it to lmforge's launcher."""
    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if os.environ.get(LAUNCHER_ENV) and error_file:  # also a job of one process (FORCE_TORCHRUN=1)
        message = line.removeprefix("lmforge: error: ")
        try:
            with open(error_file, "w", encoding="utf-8") as handle:
                json.dump({"message": message, "timestamp": int(time.time())}, handle)
            return
        except OSError:
            pass  # then print it: a message must never be lost
    if is_worker():
        line = line.replace("lmforge: error: ", f"lmforge: error: rank {os.environ.get('RANK', '0')}: ", 1)
    print(line, file=sys.stderr, flush=True)
