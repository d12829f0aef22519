"""LmforgeError crosses process boundaries whole: tokenizing workers raise it in a child process."""

from __future__ import annotations

import pickle

from lmforge.errors import LmforgeError


def test_error_keeps_message_and_hint_through_pickle() -> None:
    err = pickle.loads(pickle.dumps(LmforgeError("bad record 3", "fix the tools column")))
    assert isinstance(err, LmforgeError)
    assert (err.message, err.hint) == ("bad record 3", "fix the tools column")
    assert str(err) == "bad record 3 (fix the tools column)"
