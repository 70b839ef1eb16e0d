"""Typed configuration: dataclasses loaded from YAML, unknown keys rejected with a suggestion."""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import numbers
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
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


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


#: A YAML 1.1 quirk: PyYAML reads 1e-3 (no dot) as a string; float fields accept such numerals.
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _convert(hint: Any, value: Any, where: str) -> Any:
    """`value` checked against the type hint `hint` (and converted: int → float, list → tuple, mapping → dataclass).

    bool is not an int here (`epochs: true` is an error), containers are checked element by element, and
    unions take the first alternative that fits.
    """
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, TypeVar):
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where=where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: expected {_type_name(hint)}, got None")
        problems = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except ConfigError as exc:
                problems.append(str(exc))
        if len(problems) == 1:
            raise ConfigError(problems[0])
        raise ConfigError(f"{where}: expected {_type_name(hint)}, got {_describe(value)}")
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if not any(type(value) is type(a) and value == a for a in allowed):  # 1 is not True here
            raise ConfigError(f"{where}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {_describe(value)}")
        args = typing.get_args(hint)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected a list of {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
        inner = args[0] if args else Any
        items = [_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_describe(value)}")
        key_hint, value_hint = typing.get_args(hint) or (Any, Any)
        return {_convert(key_hint, k, f"{where}"): _convert(value_hint, v, f"{where}.{k}") for k, v in value.items()}
    if hint is float:
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            return float(value)
        if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):  # numpy scalars too
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {_describe(value)}")
    if hint is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {_describe(value)}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {_describe(value)}")
    if hint is str:
        if isinstance(value, str | os.PathLike):  # a Path from a caller (YAML gives str) is its text
            return str(value) if isinstance(value, os.PathLike) else value
        raise ConfigError(f"{where}: expected a string, got {_describe(value)}")
    if hint is Path:
        if isinstance(value, str | Path):
            return Path(value)
        raise ConfigError(f"{where}: expected a path, got {_describe(value)}")
    return value


def read_yaml(path: str | Path) -> Any:
    """The parsed YAML file `path`; a missing file or bad YAML is a one-line ConfigError naming it."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load dataclass `cls` from a YAML file; errors name the file and key."""
    return from_dict(cls, read_yaml(path), where=str(path))


def wired(cls: type[T], placeholders: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    """`dataclasses.field` arguments of a field of type `cls` inside an enclosing config (e.g. a pipeline stage's
    workflow `Config`) whose `placeholders` keys the enclosing workflow fills in at run time: the YAML may not set
    them, and the section's defaults (when it is absent) are `cls`'s with `defaults` on top."""
    return {"default_factory": lambda: from_dict(cls, {**placeholders, **defaults}),
            "metadata": {"wired": placeholders}}


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain, YAML/JSON-serializable data."""
    return dataclasses.asdict(config)
