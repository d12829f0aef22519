"""Putting ``os.environ`` back as it was: the same mapping object, with the same contents.

Libraries may replace the mapping itself, not only its values: datasets' ``map(num_proc=N)`` (5.2)
ends with ``os.environ = <a deep copy taken before>``. Whoever holds the real mapping (a launcher's
saved environment, pytest's monkeypatch) then edits an orphan, and the C environment subprocesses
inherit drifts from ``os.environ``. Used by the data pipeline around such calls and by
``train.isolation.process_state_scope`` at the end of a run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, MutableMapping


def restore_environ(mapping: MutableMapping[str, str], saved: dict[str, str]) -> None:
    """Make ``mapping`` (the original ``os.environ``) ``os.environ`` again, holding ``saved``."""
    os.environ = mapping  # type: ignore[assignment]  # noqa: B003 (the original mapping back)
    for key in [key for key in mapping if key not in saved]:
        del mapping[key]
    for key, value in saved.items():
        if mapping.get(key) != value:
            mapping[key] = value


@contextlib.contextmanager
def environ_kept() -> Iterator[None]:
    """Run the block, then put ``os.environ`` back as it was before it."""
    mapping, saved = os.environ, dict(os.environ)
    try:
        yield
    finally:
        restore_environ(mapping, saved)
