"""The one exception type for mistakes a user can fix (config, data, paths).

The CLI catches it once and prints its message as one line, without a traceback unless
``--debug``. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class LmforgeError(Exception):
    """A user-facing error: ``message`` says what is wrong, ``hint`` says what to change."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self) -> tuple[type, tuple[str, str | None]]:
        # Pickled across worker processes (datasets.map with num_proc): keep the hint too.
        return (type(self), (self.message, self.hint))

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
