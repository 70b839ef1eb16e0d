"""Typed configuration: dataclasses loaded from YAML, unknown keys rejected with a suggestion."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from caloray.errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any] | None, *, where: str = "config") -> T:
    """Build dataclass `cls` from a mapping, recursing into nested dataclass fields.

    Unknown keys raise `ConfigError` naming the closest valid key; `where` names the file/section.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(fields)}"
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        wired = fields[key].metadata.get("wired")  # keys an enclosing config fills in itself (see `wired`)
        if wired and isinstance(value, dict):
            taken = sorted(set(wired) & set(value))
            if taken:
                raise ConfigError(f"{where}.{key}: {', '.join(taken)} is set by the enclosing workflow, not here")
            value = {**wired, **value}
        kwargs[key] = _convert(hints[key], value, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # missing required fields
        raise ConfigError(f"{where}: {exc}") from None
    except ConfigError as exc:  # a value check in __post_init__: say which file (and section) it came from
        raise ConfigError(f"{where}: {exc}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where=where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        if len(args) == 1:
            return _convert(args[0], value, where)
        return value
    if origin in (list, tuple) and isinstance(value, list | tuple):
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        items = [_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load dataclass `cls` from a YAML file; errors name the file and key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return from_dict(cls, data, where=str(path))


def wired(cls: type[T], placeholders: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    """`dataclasses.field` arguments of a field of type `cls` inside an enclosing config (e.g. a pipeline stage's
    workflow `Config`) whose `placeholders` keys the enclosing workflow fills in at run time: the YAML may not set
    them, and the section's defaults (when it is absent) are `cls`'s with `defaults` on top."""
    return {"default_factory": lambda: from_dict(cls, {**placeholders, **defaults}),
            "metadata": {"wired": placeholders}}


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain, YAML/JSON-serializable data."""
    return dataclasses.asdict(config)
