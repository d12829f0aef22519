"""Pre-flight template checks (issue 11): the silent ways a chat template ruins a fine-tune.

Each check returns a Finding with a verdict and the fix. They need only the tokenizer, the
template and canonical records, so they run before any weights load, in a second or two on a
1000-record sample:

- end of turn is trained — else the model never learns to stop (error);
- stop words are tokens — else generation never stops at the end of turn (error);
- template agrees with the tokenizer's own chat template — else training and the model's usual
  format differ, e.g. in a default system prompt (warning; the training template is saved);
- prompt boundary is stable — the prompt inside a sample equals the generation prompt (warning);
- truncation keeps the end of turn — cutoff_len does not cut the final end-of-turn (warning).
"""

from __future__ import annotations

import math
from typing import Any

from lmforge.data.processors import IGNORE_INDEX, encode_supervised
from lmforge.data.templates import Template, builtin_templates, encode, fill, to_chat_messages
from lmforge.doctor.report import Finding, Report
from lmforge.doctor.samples import (
    PROBE,
    PROBE_SYSTEM,
    EndOfTurn,
    Rendered,
    pick_records,
    render_probe,
    render_records,
)

TRUNCATION_THRESHOLD = 0.05
_NO_CUTOFF = 1 << 62


def run_template_checks(
    cfg: Any, tokenizer: Any, template: Template, samples: Any, own_chat_template: str | None = None
) -> Report:
    """All checks on ``samples`` (canonical records; a Dataset, list or stream) and a probe dialog.

    ``own_chat_template`` is the model's own Jinja template when ``tokenizer.chat_template`` has
    already been replaced by the training one; default: ``tokenizer.chat_template``.
    """
    data = cfg.data
    report = Report(template=template.name, mode=data.template_checks)
    if data.template_checks == "off":
        return report
    records = pick_records(samples, seed=getattr(cfg.train, "seed", 0))
    rendered, failures = render_records(records, template, tokenizer, data.default_system)
    report.samples_checked = len(rendered)
    probe = render_probe(template, tokenizer)
    if failures:
        report.findings.append(
            Finding(
                "samples_render", "samples render", "error",
                f"{len(failures)} of {len(records)} records cannot be rendered; first: {failures[0]}",
                "fix or drop those records (see docs/data.md for the record format)",
            )
        )  # fmt: skip
    report.findings += [
        check_end_of_turn_trained([probe, *rendered], template, tokenizer, data),
        check_stop_words(template, tokenizer),
        *check_agrees_with_tokenizer(template, tokenizer, own_chat_template),
        check_prompt_boundary([probe, *rendered], template, tokenizer),
        check_truncation(rendered, template, tokenizer, data),
    ]
    return report


def _labels(item: Rendered, data: Any, cutoff_len: int = _NO_CUTOFF) -> tuple[list[int], list[int]]:
    return encode_supervised(
        item.pairs, cutoff_len, train_on_prompt=data.train_on_prompt, mask_history=data.mask_history
    )


def _show(text: str, limit: int = 90) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


# --- end of turn is trained --------------------------------------------------------------------
def check_end_of_turn_trained(items: list[Rendered], template: Template, tokenizer: Any, data: Any) -> Finding:
    title = "end of turn is trained"
    eot = EndOfTurn.of(template, tokenizer)
    if not is_special_token(tokenizer, eot.text):
        return Finding(
            "end_of_turn_trained", title, "error",
            f"template {template.name}: the end-of-turn {eot.text!r} is not a token of this tokenizer "
            f"({len(eot.ids)} pieces), so no single trained token tells the model to stop",
            f"use a template that fits this tokenizer: {', '.join(fitting_templates(tokenizer))}",
            {"end_of_turn": eot.text},
        )  # fmt: skip
    turns, bad, first = 0, 0, ""
    for item in items:
        _, labels = _labels(item, data)
        offset = 0
        for prompt, response in item.pairs:
            start, offset = offset + len(prompt), offset + len(prompt) + len(response)
            if all(label == IGNORE_INDEX for label in labels[start:offset]):
                continue  # not trained (mask_history)
            turns += 1
            pos = eot.position(response)
            if pos is None or any(labels[start + pos + j] == IGNORE_INDEX for j in range(len(eot.ids))):
                bad += 1
                first = first or f"{item.name} ends with {_show(tokenizer.decode(response[-6:]))}"
    if not bad:
        return Finding("end_of_turn_trained", title, "ok", f"all {turns} trained assistant turns end with {eot.text!r}")
    if eot.tail < 0:
        fix = (
            f"end the template's `assistant` format with {eot.text!r} after {{{{content}}}} "
            f'(e.g. "{{{{content}}}}{eot.text}\\n"), or use template: auto'
        )
    else:
        fix = "the end-of-turn tokens must carry labels: check train_on_prompt/mask_history handling"
    return Finding(
        "end_of_turn_trained", title, "error",
        f"template {template.name}: {bad} of {turns} trained assistant turns do not end with the "
        f"end-of-turn {eot.text!r} as a trained token, so the model never learns to stop ({first})",
        fix, {"turns": turns, "failing": bad, "end_of_turn": eot.text},
    )  # fmt: skip


# --- stop words are tokens ---------------------------------------------------------------------
def is_special_token(tokenizer: Any, text: str) -> bool:
    ids = encode(tokenizer, text)
    if len(ids) != 1:
        return False
    return ids[0] in set(tokenizer.all_special_ids) or text in tokenizer.get_added_vocab()


def _stop_strings(template: Template, tokenizer: Any) -> list[str]:
    words = [*template.stop_token_strings(tokenizer), fill(template.end_of_turn, tokenizer)]
    return list(dict.fromkeys(words))


def fitting_templates(tokenizer: Any) -> list[str]:
    """Named templates whose own stop words are all special tokens here, plus auto when possible."""
    names = [
        name
        for name, template in builtin_templates().items()
        if template.stop_words and all(is_special_token(tokenizer, w) for w in _stop_strings(template, tokenizer))
    ]
    return names + (["auto"] if getattr(tokenizer, "chat_template", None) else [])


def check_stop_words(template: Template, tokenizer: Any) -> Finding:
    title = "stop words are tokens"
    words = _stop_strings(template, tokenizer)
    bad = [w for w in words if not w or not is_special_token(tokenizer, w)]
    if not bad:
        return Finding("stop_words_are_tokens", title, "ok", f"{', '.join(map(repr, words))}: one special token each")
    pieces = "; ".join(f"{w!r} encodes to {len(encode(tokenizer, w))} tokens" for w in bad if w)
    fits = fitting_templates(tokenizer)
    return Finding(
        "stop_words_are_tokens", title, "error",
        f"template {template.name}: stop word {', '.join(map(repr, bad))} does not exist in this tokenizer "
        f"({pieces or 'the tokenizer has no eos token'}), so generation would not stop at the end of turn",
        f"use a template that fits this tokenizer: {', '.join(fits) or 'a custom template .yaml'}",
        {"missing": bad, "suggested": fits},
    )  # fmt: skip


# --- template agrees with the tokenizer's own chat template ------------------------------------
def _own_render(tokenizer: Any, system: str | None, own: str | None = None) -> str:
    return tokenizer.apply_chat_template(to_chat_messages(PROBE, system), tokenize=False, chat_template=own)


def tokenizer_default_system(tokenizer: Any, own: str | None = None) -> str | None:
    """The system prompt the tokenizer's chat template inserts when a conversation has none."""
    sentinel = "\x00system\x00"
    with_system, without = _own_render(tokenizer, sentinel, own), _own_render(tokenizer, None, own)
    head, _, tail = with_system.partition(sentinel)
    if without.startswith(head) and without.endswith(tail) and len(without) > len(head) + len(tail):
        return without[len(head) : len(without) - len(tail)]
    return None


def check_agrees_with_tokenizer(template: Template, tokenizer: Any, own: str | None = None) -> list[Finding]:
    title = "template agrees with the tokenizer's chat template"
    own = own or getattr(tokenizer, "chat_template", None)
    if template.name == "auto":
        return [Finding("agrees_with_tokenizer", title, "ok", "template: auto is the tokenizer's own chat template")]
    if not own:
        return [Finding("agrees_with_tokenizer", title, "ok", "the tokenizer has no chat template to compare with")]
    if own == template.chat_template_jinja(tokenizer):
        message = "the tokenizer already carries the training template: run lmforge doctor to compare with the model's"
        return [Finding("agrees_with_tokenizer", title, "ok", message)]
    findings = []
    for label, system in (("with a system prompt", PROBE_SYSTEM), ("without one", None)):
        ours = [t for p, r in template.encode_turns(tokenizer, PROBE, system=system) for t in (*p, *r)]
        try:
            theirs = encode(tokenizer, _own_render(tokenizer, system, own))
        except Exception as err:  # a foreign Jinja template may raise anything
            findings.append(
                Finding("agrees_with_tokenizer", title, "warning", f"cannot render its own template: {err}")
            )
            continue
        if ours == theirs:
            findings.append(Finding("agrees_with_tokenizer", title, "ok", f"same ids on the probe {label}"))
            continue
        findings.append(_difference(template, tokenizer, label, system, ours, theirs, own))
    return findings


def _difference(
    template: Template, tokenizer: Any, label: str, system: str | None, ours: list[int], theirs: list[int], own: str
) -> Finding:
    i = next((k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    before = tokenizer.decode(ours[max(i - 4, 0) : i])
    mine, their_text = tokenizer.decode(ours[i : i + 16]), tokenizer.decode(theirs[i : i + 16])
    message = (
        f"probe {label}: {f'after {_show(before)}' if before else 'at the start'} "
        f"template {template.name} renders {_show(mine)}, "
        f"the tokenizer's own template renders {_show(their_text)}"
    )
    fix = f"use template: auto to train in the tokenizer's format, or keep {template.name} knowingly"
    default = tokenizer_default_system(tokenizer, own) if system is None else None
    if default and default != template.default_system:
        message = (
            f"probe {label}: the tokenizer's own template adds the default system prompt {_show(default)}, "
            f"template {template.name} adds {_show(template.default_system) if template.default_system else 'none'}"
        )
        fix = f"set default_system: {default!r} to train with it, or use template: auto"
    message += f"; lmforge saves the training template ({template.name}) with the model, so served models use it"
    return Finding(
        "agrees_with_tokenizer", "template agrees with the tokenizer's chat template", "warning", message, fix,
        {"probe": label, "token_index": i, "training": mine, "tokenizer": their_text,
         "tokenizer_default_system": default},
    )  # fmt: skip


# --- prompt boundary is stable -----------------------------------------------------------------
def check_prompt_boundary(items: list[Rendered], template: Template, tokenizer: Any) -> Finding:
    title = "prompt boundary is stable"
    prompts, bad, first = 0, 0, ""
    for item in items:
        answers = [k for k, m in enumerate(item.messages) if m["role"] == "assistant"]
        done: list[int] = []
        for (prompt, response), at in zip(item.pairs, answers):
            trained = done + prompt
            alone = template.encode_prompt(tokenizer, item.messages[:at], system=item.system, tools=item.tools)
            prompts += 1
            if trained != alone:
                bad += 1
                j = next((k for k, (a, b) in enumerate(zip(trained, alone)) if a != b), min(len(trained), len(alone)))
                first = first or (
                    f"{item.name}, token {j}: training has {trained[j : j + 3]} "
                    f"{_show(tokenizer.decode(trained[j : j + 3]))}, generation has {alone[j : j + 3]} "
                    f"{_show(tokenizer.decode(alone[j : j + 3]))}"
                )
            done = trained + response
    if not bad:
        return Finding("prompt_boundary_stable", title, "ok", f"all {prompts} prompts encode the same alone")
    return Finding(
        "prompt_boundary_stable", title, "warning",
        f"{bad} of {prompts} prompts tokenize differently inside a training sample than alone at generation "
        f"({first})",
        "end the template's assistant_header with a newline or a special token so answers cannot merge "
        "into it, or use template: auto",
        {"prompts": prompts, "differing": bad},
    )  # fmt: skip


# --- truncation keeps the end of turn ----------------------------------------------------------
def keeps_final_end_of_turn(labels: list[int], eot: EndOfTurn) -> bool:
    """Whether the last trained run of ``labels`` still ends with the end-of-turn."""
    end = max((k for k, label in enumerate(labels) if label != IGNORE_INDEX), default=-1)
    if end < 0:
        return False
    start = end
    while start > 0 and labels[start - 1] != IGNORE_INDEX:
        start -= 1
    return eot.position(labels[start : end + 1]) is not None


def suggest_cutoff_len(lengths: list[int]) -> int:
    """The 95th percentile of sample lengths, rounded up to a multiple of 64."""
    ordered = sorted(lengths)
    p95 = ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]
    return max(64, math.ceil(p95 / 64) * 64)


def check_truncation(items: list[Rendered], template: Template, tokenizer: Any, data: Any) -> Finding:
    title = "truncation keeps the end of turn"
    if not items:
        return Finding("truncation_keeps_end_of_turn", title, "ok", "no conversations to measure")
    eot = EndOfTurn.of(template, tokenizer)
    lengths = [item.length for item in items]
    cut = [item for item in items if item.length > data.cutoff_len]
    lost = sum(1 for item in cut if not keeps_final_end_of_turn(_labels(item, data, data.cutoff_len)[1], eot))
    share = lost / len(items)
    details = {
        "samples": len(items), "lost": lost, "share": round(share, 4), "cutoff_len": data.cutoff_len,
        "max_length": max(lengths), "suggested_cutoff_len": suggest_cutoff_len(lengths),
    }  # fmt: skip
    message = (
        f"{lost} of {len(items)} samples ({share:.1%}) lose their final end-of-turn to cutoff_len "
        f"{data.cutoff_len} (longest {max(lengths)} tokens)"
    )
    if share <= TRUNCATION_THRESHOLD:
        return Finding("truncation_keeps_end_of_turn", title, "ok", message, details=details)
    return Finding(
        "truncation_keeps_end_of_turn", title, "warning",
        message + ": the model learns answers that never end",
        f"set cutoff_len: {details['suggested_cutoff_len']} (p95 of sample lengths, rounded up to a multiple "
        "of 64), or shorten the long samples",
        details,
    )  # fmt: skip
