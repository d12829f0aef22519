"""Shard sizes as users write them: a number of GB (LLaMA-Factory's ``export_size: 5``) or a size
string (``"200MB"``, ``"1.5GB"``, ``"512MiB"``), turned into bytes for ``save_pretrained``.

Decimal units (KB, MB, GB, TB) are powers of 1000 as in transformers and the Hub; binary ones
(KiB, MiB, GiB, TiB) powers of 1024. transformers' own parser takes whole numbers only, so
``0.2`` GB or ``"1.5GB"`` would fail there: lmforge passes it the byte count.
"""

from __future__ import annotations

import re

UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", re.IGNORECASE)


def size_to_bytes(value: float | int | str) -> int:
    """Bytes of an ``export_size`` value; ValueError (with the accepted forms) when it is not one."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, (int, float)):
        number, unit = float(value), "gb"
    else:
        match = _SIZE.fullmatch(value)
        if match is None or (match.group(2) and match.group(2).lower() not in UNITS):
            raise ValueError(f"{value!r} is not a size: write a number of GB (5, 0.5) or a string such as 200MB, 2GiB")
        number, unit = float(match.group(1)), (match.group(2) or "gb").lower()
    size = int(number * UNITS[unit])
    if size <= 0:
        raise ValueError(f"{value!r} is not a positive size")
    return size
