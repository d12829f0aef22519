"""`lmforge doctor cfg.yaml`: everything that can be checked before weights load, as one table.

Steps run in the order training runs them — config, tokenizer, template, data, template checks —
and stop at the first step that fails, with its fix. Exit status 0 when nothing is an error, 1
otherwise, so CI can gate a training job on it. Costs a few seconds: no model weights load.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmforge.commands import add_config_arguments
from lmforge.errors import LmforgeError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="check config, tokenizer, data and chat template before training")
    add_config_arguments(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the findings as JSON to PATH")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="also run the cluster check, launched like training (docs/distributed.md)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmforge.doctor.report import Finding, Report, render_table

    findings: list[Finding] = []

    def step(title: str, action: Callable[[], tuple[Any, str]]) -> Any:
        try:
            value, message = action()
        except LmforgeError as err:
            findings.append(Finding(title, title, "error", err.message, err.hint or ""))
            return None
        findings.append(Finding(title, title, "ok", message))
        return value

    report = Report(template="?")
    cfg = step("config", lambda: _config(args))
    if cfg is not None and args.cluster:
        from lmforge.launch import launch_if_needed

        argv = ["doctor", *([args.config] if args.config else []), *args.overrides, "--cluster"]
        code = launch_if_needed(cfg, argv)  # every rank of the job runs the check
        if code is not None:
            return code
        step("cluster", lambda: _cluster(cfg))
        from lmforge.distributed import rank

        if rank() != 0:  # rank 0 prints the table for the job
            return 1 if any(f.level == "error" for f in findings) else 0
    tokenizer = cfg and step("tokenizer", lambda: _tokenizer(cfg))
    built = tokenizer and step("template", lambda: _template(cfg, tokenizer))
    if built is not None and built.template is None:
        report.template = "none"  # raw-text pre-training renders no conversation: nothing to check
    elif built is not None:
        report.template = built.template.name
        records = _records(cfg, findings)
        if records is not False:
            report = _checks(cfg, built, records, findings)
    report.findings = findings
    render_table(findings, title=f"lmforge doctor {args.config or ''}".rstrip())
    errors, warnings = len(report.errors), len(report.warnings)
    print(f"doctor: {errors} error(s), {warnings} warning(s)" + (" — training would stop" if errors else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if errors else 0


def _config(args: argparse.Namespace) -> tuple[Any, str]:
    from lmforge.config import load_config

    cfg = load_config(args.config, args.overrides)
    where = args.config or "command line"
    return cfg, f"{where}: stage {cfg.method.stage}, template {cfg.data.template}, cutoff_len {cfg.data.cutoff_len}"


def _cluster(cfg: Any) -> tuple[Any, str]:
    """distributed/cluster.py on every rank, over a process group made as training makes it."""
    import os
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    from lmforge.distributed.cluster import check_cluster

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=cfg.train.ddp_timeout))
    try:
        nodes = int(os.environ.get("WORLD_SIZE", "1")) > int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        shared = nodes and bool(cfg.train.extra.get("deepspeed"))
        summary = check_cluster(cfg, timeout_s=cfg.train.rdzv_timeout, shared_output=shared)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    hosts = sorted({r["host"] for r in summary["ranks"]})
    return summary, f"world size {summary['world_size']} on {summary['nodes']} node(s) ({', '.join(hosts)}): consistent"


def _tokenizer(cfg: Any) -> tuple[Any, str]:
    from lmforge.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(cfg.model)
    own = "has a chat template" if getattr(tokenizer, "chat_template", None) else "has no chat template"
    return tokenizer, f"{cfg.model.model_name_or_path}: {len(tokenizer)} tokens, eos {tokenizer.eos_token!r}, {own}"


def _template(cfg: Any, tokenizer: Any) -> tuple[Any, str]:
    """The template attached to the tokenizer exactly as training attaches it (one builder)."""
    from lmforge.models.tokenizer import build_tokenizer_and_template

    built = build_tokenizer_and_template(cfg, tokenizer)
    if built.template is None:
        return built, "none needed: stage pt with template auto trains on raw text"
    return built, f"{built.template.name}: end of turn {built.template.turn_suffix(built.tokenizer)!r}"


def _records(cfg: Any, findings: list) -> Any:
    """Canonical training records, None when no data set is configured, False when loading failed."""
    from lmforge.doctor.report import Finding

    if not cfg.data.dataset:
        findings.append(Finding("data", "data", "warning", "no dataset set: checks use a probe conversation only"))
        return None
    from lmforge.data.pipeline import load_records

    try:
        train, _ = load_records(cfg)
    except LmforgeError as err:
        findings.append(Finding("data", "data", "error", err.message, err.hint or ""))
        return False
    count = f"{len(train)} records" if hasattr(train, "__len__") else "streaming records"
    findings.append(Finding("data", "data", "ok", f"{', '.join(cfg.data.dataset)}: {count}"))
    return train


def _checks(cfg: Any, built: Any, records: Any, findings: list) -> Any:
    from lmforge.doctor.checks import run_template_checks
    from lmforge.doctor.report import Finding

    if cfg.data.template_checks == "off":
        findings.append(
            Finding("template_checks", "template checks", "warning", "template_checks: off — training skips "
                    "these checks; doctor runs them anyway", "set template_checks: strict")
        )  # fmt: skip
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"template_checks": "warn"})})
    report = run_template_checks(
        cfg, built.tokenizer, built.template, records, own_chat_template=built.own_chat_template
    )
    findings.extend(report.findings)
    return report
