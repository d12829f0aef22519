"""`lmforge data cfg.yaml`: see what training will see, before any weight is loaded.

Renders a few tokenized samples with trained tokens told apart from masked ones (colour on a
terminal, ``[[...]]`` around trained text otherwise), their token counts, and the length statistics
of the whole set (p50/p95/max, share cut by cutoff_len, records dropped and why). It loads only the
tokenizer, and fills the same tokenized cache a training run with this config reuses.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from typing import Any

from lmforge.commands import add_config_arguments

IGNORE_INDEX = -100


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="show tokenized samples (trained vs masked tokens) and length statistics"
    )
    add_config_arguments(parser)
    parser.add_argument("--num-samples", type=int, default=3, help="samples to render (default 3)")
    parser.add_argument("--split", choices=("train", "eval"), default="train", help="which set to show")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmforge.config import load_config
    from lmforge.data.pipeline import build_datasets
    from lmforge.errors import LmforgeError
    from lmforge.models.tokenizer import build_tokenizer_and_template

    cfg = load_config(args.config, getattr(args, "overrides", []))
    tokenizer, template, _ = build_tokenizer_and_template(cfg)
    data = build_datasets(cfg, tokenizer, template)
    dataset = data.train if args.split == "train" else data.eval
    if dataset is None:
        raise LmforgeError("there is no eval set", "set eval_dataset or val_size, or use --split train")
    rows = list(itertools.islice(iter(dataset), max(args.num_samples, 0)))
    colour = sys.stdout.isatty()
    for index, row in enumerate(rows):
        for label, sample in _sides(row):
            _show_sample(index, sample, tokenizer, colour, label)
    print("\n".join(data.report.lines()))
    return 0


def spans(input_ids: list[int], labels: list[int]) -> list[tuple[bool, list[int]]]:
    """Runs of consecutive tokens that are all trained (True) or all masked (False)."""
    runs: list[tuple[bool, list[int]]] = []
    for token, label in zip(input_ids, labels, strict=True):
        trained = label != IGNORE_INDEX
        if runs and runs[-1][0] == trained:
            runs[-1][1].append(token)
        else:
            runs.append((trained, [token]))
    return runs


def render_plain(input_ids: list[int], labels: list[int], tokenizer: Any) -> str:
    return "".join(
        f"[[{tokenizer.decode(ids)}]]" if trained else tokenizer.decode(ids)
        for trained, ids in spans(input_ids, labels)
    )


def _sides(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A pair row (rm, dpo) shows its chosen and its rejected sequence; a kto row says its label."""
    if "chosen_input_ids" in row:
        return [
            (side, {"input_ids": row[f"{side}_input_ids"], "labels": row[f"{side}_labels"]})
            for side in ("chosen", "rejected")
        ]
    if "kto_label" in row:
        return [("desirable" if row["kto_label"] else "undesirable", row)]
    return [("", row)]


def _show_sample(index: int, row: dict[str, Any], tokenizer: Any, colour: bool, side: str = "") -> None:
    input_ids, labels = list(row["input_ids"]), list(row["labels"])
    trained = sum(1 for label in labels if label != IGNORE_INDEX)
    packed = sum(1 for p in row.get("position_ids") or [] if p == 0)
    name = f"sample {index} ({side})" if side else f"sample {index}"
    header = f"--- {name}: {len(input_ids)} tokens, {trained} trained, {len(input_ids) - trained} masked"
    header += f", {packed} packed samples" if packed > 1 else ""
    if not colour:
        print(f"{header} (trained text in [[...]])")
        print(render_plain(input_ids, labels, tokenizer))
        return
    from rich.console import Console
    from rich.text import Text

    text = Text()
    for is_trained, ids in spans(input_ids, labels):
        text.append(tokenizer.decode(ids), style="bold green" if is_trained else "dim")
    console = Console(highlight=False)
    console.print(Text(header + " (trained: green, masked: dim)", style="bold"))
    console.print(text)
