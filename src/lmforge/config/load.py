"""Reading a config: YAML file + command-line overrides → one validated RunConfig.

Every mistake becomes an LmforgeError that names the key and the fix: unknown keys get the
closest valid name, wrong types name the key and the value, conflicting keys say which to change.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import ValidationError

from lmforge.config.checks import check_combinations
from lmforge.config.schema import GROUPS, KEY_TO_GROUP, RunConfig
from lmforge.config.training_args import is_training_argument
from lmforge.errors import LmforgeError

LIST_KEYS = {
    key
    for group in GROUPS.values()
    for key, field in group.model_fields.items()
    if "list" in str(field.annotation)
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


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Turn ``key=value``, ``--key value`` and ``--key=value`` into a dict of YAML-typed values."""
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            body = arg[2:]
            if "=" in body:
                key, raw = body.split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                key, raw = body, args[i + 1]
                i += 1
            else:
                key, raw = body, "true"
        elif "=" in arg:
            key, raw = arg.split("=", 1)
        else:
            raise LmforgeError(f"unexpected argument {arg!r}", "write overrides as key=value or --key value")
        overrides[key.replace("-", "_") if key.replace("-", "_") in KEY_TO_GROUP else key] = _parse_value(raw)
        i += 1
    return overrides


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
    """Comma-separated strings become lists for list-valued keys (``dataset: a,b``)."""
    if isinstance(value, bool) and (choices := _literal_choices(key)):
        value = next((word for word in _BOOL_WORDS[value] if word in choices), value)
    if key in LIST_KEYS and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if key == "resume_from_checkpoint" and isinstance(value, str) and value.lower() in {"true", "auto"}:
        return True
    return value


def build_config(flat: dict[str, Any], source: str = "config") -> RunConfig:
    """Route flat keys to groups and validate; unknown keys either pass through or fail clearly."""
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
            raise LmforgeError(f"{source}: unknown key {key!r}", hint)
    try:
        config = RunConfig(**sections)
    except ValidationError as err:
        raise LmforgeError(_describe(err, source)) from None
    check_combinations(config)
    return config


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = [str(part) for part in first["loc"]]
    key = loc[1] if len(loc) > 1 else loc[0]
    value = first.get("input")
    return f"{source}: key {key!r} has invalid value {value!r}: {first['msg']}"


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """YAML file (optional) + CLI overrides, validated as one RunConfig."""
    flat = read_yaml(path) if path else {}
    flat.update(parse_overrides(overrides or []))
    return build_config(flat, source=str(path) if path else "command line")


def dump_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as flat YAML (run_config.yaml)."""
    Path(path).write_text(yaml.safe_dump(config.to_flat(), sort_keys=False, allow_unicode=True), encoding="utf-8")
