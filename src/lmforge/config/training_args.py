"""Names of transformers' TrainingArguments fields, for passing unknown-to-us keys through.

A static list (training_args.txt, kept in sync with the pinned transformers by a test) avoids
importing transformers (seconds) just to validate a config; a key missing from the list is
checked against the installed transformers before it is called unknown, so newer fields work.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path


@cache
def _static_names() -> frozenset[str]:
    return frozenset(Path(__file__).with_name("training_args.txt").read_text().split())


@cache
def installed_training_argument_names() -> frozenset[str]:
    import transformers

    return frozenset(f.name for f in dataclasses.fields(transformers.TrainingArguments) if f.init)


def is_training_argument(key: str) -> bool:
    return key in _static_names() or key in installed_training_argument_names()
