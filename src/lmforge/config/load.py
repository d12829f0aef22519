"""Reading a config: YAML file + command-line overrides → one validated RunConfig.

Every mistake becomes an LmforgeError that names the key and the fix: unknown keys get the
closest valid name, wrong types name the key and the value, conflicting keys say which to change.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import ValidationError

from lmforge.config import llamafactory
from lmforge.config.checks import check_combinations
from lmforge.config.schema import GROUPS, KEY_TO_GROUP, RunConfig
from lmforge.config.training_args import is_training_argument
from lmforge.errors import LmforgeError

LIST_KEYS = {
    key for group in GROUPS.values() for key, field in group.model_fields.items() if "list" in str(field.annotation)
}


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping, with errors that give the file and line."""
    path = Path(path)
    if not path.is_file():
        raise LmforgeError(f"config file not found: {path}", "check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise LmforgeError(f"{where}: invalid YAML: {getattr(err, 'problem', err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LmforgeError(f"{path}: a config must be a mapping of key: value, got {type(data).__name__}")
    return flatten_groups(data)


def flatten_groups(data: dict[str, Any]) -> dict[str, Any]:
    """Accept both flat keys and grouped sections (``model: {model_name_or_path: ...}``)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in GROUPS and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


@dataclass(frozen=True)
class Override:
    """One command-line setting, with the words the user typed (errors quote them)."""

    key: str
    value: Any
    typed: str

    @property
    def origin(self) -> str:
        return f"command line ({self.typed})"


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Turn ``key=value``, ``--key value`` and ``--key=value`` into a dict of YAML-typed values."""
    return {item.key: item.value for item in parse_override_args(args)}


def parse_override_args(args: list[str]) -> list[Override]:
    """Overrides in order. Only true/false keys may stand alone (``--do_eval``); a flag that needs
    a value never takes the next ``key=value`` or ``--flag`` as one, so ``--learning_rate`` alone is
    an error rather than a learning rate of 1.0."""
    items: list[Override] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            body = arg[2:]
            if "=" in body:
                key, raw = body.split("=", 1)
                typed = arg
            else:
                key, following = _key_name(body), args[i + 1] if i + 1 < len(args) else None
                kind = _flag_kind(key)
                if following is not None and _takes(kind, following):
                    raw, typed = following, f"{arg} {following}"
                    i += 1
                elif kind == "value":
                    raise LmforgeError(
                        f"command line: {arg} needs a value (only true/false keys may stand alone)",
                        f"write {arg} VALUE or {body}=VALUE",
                    )
                else:
                    raw, typed = "true", arg
        elif "=" in arg:
            key, raw = arg.split("=", 1)
            typed = arg
        else:
            raise LmforgeError(f"unexpected argument {arg!r}", "write overrides as key=value or --key value")
        items.append(Override(_key_name(key), _parse_value(raw), typed))
        i += 1
    return items


def _key_name(key: str) -> str:
    """``--cutoff-len`` is ``cutoff_len`` when that is a key we know."""
    spelled = key.replace("-", "_")
    known = spelled in KEY_TO_GROUP or spelled in llamafactory.rules() or is_training_argument(spelled)
    return spelled if known else key


_OVERRIDE_SHAPE = re.compile(r"^[A-Za-z_][\w.-]*=")


def _takes(kind: str, following: str) -> bool:
    """Whether ``--key`` takes the next argument as its value."""
    if following.startswith("--") or _OVERRIDE_SHAPE.match(following):
        return False  # the next setting, not a value
    if kind == "bool":
        return isinstance(_parse_value(following), bool) or following in ("0", "1")
    return True


def _flag_kind(key: str) -> str:
    """``bool`` (true/false only), ``optional`` (stands alone as true, or takes a value), ``value``."""
    annotation = _annotation(key)
    if annotation is None:
        return "optional"  # an unknown key: build_config names it (with the closest valid one)
    choices = set(get_args(annotation)) or {annotation}
    if bool not in choices and "bool" not in str(annotation):
        return "value"
    return "bool" if choices <= {bool, type(None)} or str(annotation) in ("bool", "Optional[bool]") else "optional"


def _annotation(key: str) -> Any:
    """The type a key's value must have, looked up in the order build_config routes keys."""
    if key in KEY_TO_GROUP:
        return GROUPS[KEY_TO_GROUP[key]].model_fields[key].annotation
    rule = llamafactory.rules().get(key)
    if rule is not None:
        if rule.alias is None:
            return None  # refused keys stand alone too, and then get their reason
        return bool if rule.values else _annotation(rule.alias)
    if is_training_argument(key):
        return _training_argument_types().get(key)
    return None


@cache
def _training_argument_types() -> dict[str, Any]:
    import transformers

    return {f.name: f.type for f in dataclasses.fields(transformers.TrainingArguments) if f.init}


def _parse_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def closest_key(key: str) -> str | None:
    matches = difflib.get_close_matches(key, list(KEY_TO_GROUP), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _literal_choices(key: str) -> tuple[Any, ...]:
    field = GROUPS[KEY_TO_GROUP[key]].model_fields[key]
    return get_args(field.annotation) if get_origin(field.annotation) is Literal else ()


# YAML 1.1 reads off/on/no/yes as booleans; give them back to keys whose choices are those words.
_BOOL_WORDS = {False: ("off", "no", "false"), True: ("on", "yes", "true")}


def _normalise(key: str, value: Any) -> Any:
    """Comma-separated strings (``dataset: a,b``) and single numbers become lists for list keys."""
    if isinstance(value, bool) and (choices := _literal_choices(key)):
        value = next((word for word in _BOOL_WORDS[value] if word in choices), value)
    if key in LIST_KEYS and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if key in LIST_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
        return [value]  # `interleave_probs: 1.0`: one value is a list of one, then checked as such
    if key == "resume_from_checkpoint" and isinstance(value, str) and value.lower() in {"true", "auto"}:
        return True
    return value


def build_config(flat: dict[str, Any], source: str = "config", origins: dict[str, str] | None = None) -> RunConfig:
    """Route flat keys to groups and validate; unknown keys either pass through or fail clearly.

    ``origins`` names where a key came from when that is not ``source`` (a command-line override),
    so a mistake is blamed on what the user typed, not on the YAML file.
    """
    origins = dict(origins or {})
    flat, spelled = _translate_llamafactory(flat, source, origins)
    sections: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    for key, value in flat.items():
        group = KEY_TO_GROUP.get(key)
        if group is not None:
            sections[group][key] = _normalise(key, value)
        elif is_training_argument(key):
            sections["train"].setdefault("extra", {})[key] = value
        else:
            suggestion = closest_key(key)
            hint = f"did you mean {suggestion!r}?" if suggestion else "run `lmforge config` to list the keys"
            raise LmforgeError(f"{origins.get(key, source)}: unknown key {key!r}", hint)
    try:
        config = RunConfig(**sections)
    except ValidationError as err:
        raise LmforgeError(_describe(err, source, origins, spelled)) from None
    check_combinations(config)
    return config


def _translate_llamafactory(
    flat: dict[str, Any], source: str, origins: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply llamafactory_keys.yaml: aliases renamed, neutral values dropped, the rest refused.

    Returns the new flat dict and, for each aliased lmforge key, the key the user wrote.
    """
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in flat.items():
        if key in KEY_TO_GROUP or key not in llamafactory.rules():
            out.setdefault(key, value)
            continue
        origin = origins.get(key, source)
        translated = llamafactory.translate(key, value, origin)
        if translated is None:
            continue
        target, ours = translated
        if target in flat and (target in origins) != (key in origins):
            if target in origins:
                continue  # the command line names the lmforge key itself: it wins over the file
        elif target in flat and _normalise(target, flat[target]) != _normalise(target, ours):
            raise LmforgeError(
                f"{origin}: {key}: {llamafactory.show(value)} contradicts "
                f"{target}: {llamafactory.show(flat[target])} (it means {target}: {llamafactory.show(ours)})",
                f"keep one of {key} and {target}",
            )
        out[target] = ours
        spelled[target] = key
        origins.setdefault(target, origin)
    return out, spelled


def _describe(err: ValidationError, source: str, origins: dict[str, str], spelled: dict[str, str]) -> str:
    first = err.errors()[0]
    loc = [str(part) for part in first["loc"]]
    key = loc[1] if len(loc) > 1 else loc[0]
    value = first.get("input")
    name = f"{spelled[key]!r} (lmforge's {key})" if key in spelled else repr(key)
    return f"{origins.get(key, source)}: key {name} has invalid value {value!r}: {first['msg']}"


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """YAML file (optional) + CLI overrides, validated as one RunConfig."""
    flat = read_yaml(path) if path else {}
    origins: dict[str, str] = {}
    for item in parse_override_args(overrides or []):
        flat[item.key] = item.value
        origins[item.key] = item.origin
    return build_config(flat, source=str(path) if path else "command line", origins=origins)


def dump_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as flat YAML (run_config.yaml)."""
    Path(path).write_text(yaml.safe_dump(config.to_flat(), sort_keys=False, allow_unicode=True), encoding="utf-8")
