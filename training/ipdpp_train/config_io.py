"""Reading and writing run configs: TOML files, ``--set`` overrides, plain dicts.

Unknown sections or keys are errors that name the key, so that a typo never silently falls back
to a default; values are checked against the field types of :mod:`ipdpp_train.config`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from .config import Config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python < 3.11
    import tomli as tomllib

__all__ = [
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "to_toml",
]


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Convert a TOML value to the field type ``hint``; raise naming ``name`` when it cannot."""
    origin = get_origin(hint)
    if origin is Union:
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, name)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise TypeError(f"{name} has an unsupported value {value!r} ({'; '.join(errors)})")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list; got {value!r}")
        args = get_args(hint)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value))
        if origin is tuple:
            if len(value) != len(args):
                raise ValueError(f"{name} must have {len(args)} entries; got {value!r}")
            return tuple(_coerce(v, a, name) for v, a in zip(value, args))
        return [_coerce(v, args[0], name) for v in value]
    if is_dataclass(hint):  # an entry of an array of tables, e.g. [[variants]]
        if not isinstance(value, dict):
            raise TypeError(f"{name} must be a table; got {value!r}")
        return _build(hint, value, f"{name}.")  # type: ignore[arg-type]
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be true or false; got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer; got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number; got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string; got {value!r}")
        return value
    raise TypeError(f"{name}: unsupported field type {hint!r}")  # pragma: no cover


def _build(cls: type, table: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys in [{prefix.rstrip('.')}]: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for key, value in table.items():
        hint = hints[key]
        if is_dataclass(hint):
            if not isinstance(value, dict):
                raise TypeError(f"[{prefix}{key}] must be a table; got {value!r}")
            kwargs[key] = _build(hint, value, f"{prefix}{key}.")  # type: ignore[arg-type]
        else:
            kwargs[key] = _coerce(value, hint, prefix + key)
    return cls(**kwargs)


def config_from_dict(table: dict[str, Any]) -> Config:
    """Build a :class:`Config` from nested dicts (TOML tables); unknown keys raise ValueError."""
    return _build(Config, table, "")


def config_to_dict(config: Any) -> dict[str, Any]:
    """Nested plain dicts (tuples become lists, None entries are dropped for TOML)."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            out[f.name] = config_to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = [config_to_dict(v) if is_dataclass(v) else v for v in value]
        else:
            out[f.name] = value
    return out


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML config file (None: all defaults).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError, TypeError
        For unknown keys or values of the wrong type (the message names the key).
    """
    if path is None:
        return Config()
    with open(path, "rb") as fh:
        table = tomllib.load(fh)
    return config_from_dict(table)


def _parse_value(text: str) -> Any:
    """A flag value as TOML (``3``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(config: Config, assignments: list[str]) -> Config:
    """Apply ``section.key=value`` assignments (values in TOML syntax) to a config.

    Raises
    ------
    ValueError
        For a malformed assignment or an unknown section/key.
    """
    table = config_to_dict(config)
    for item in assignments:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--set expects section.key=value; got {item!r}")
        path, text = item.split("=", 1)
        section, key = path.strip().split(".", 1)
        if section not in table:
            raise ValueError(f"--set {item!r}: unknown section {section!r}")
        if not isinstance(table[section], dict):
            raise ValueError(f"--set {item!r}: [[{section}]] tables are set in the config file")
        table[section][key.strip()] = _parse_value(text.strip())
    return config_from_dict(_drop_none(table))


def _drop_none(table: dict[str, Any]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return _drop_none(value)
        return [clean(v) for v in value] if isinstance(value, list) else value

    return {k: clean(v) for k, v in table.items() if v is not None}


def to_toml(config: Config) -> str:
    """The config as TOML text (None values are omitted: they mean "the default")."""
    lines: list[str] = []
    for section, content in config_to_dict(config).items():
        # A list is an array of tables ([[variants]]), one [[section]] header per entry.
        tables = content if isinstance(content, list) else [content]
        for table in tables:
            lines.append(f"[[{section}]]" if isinstance(content, list) else f"[{section}]")
            for key, value in table.items():
                if value is not None:
                    lines.append(f"{key} = {json.dumps(value)}")
            lines.append("")
    return "\n".join(lines)
