"""Configs as flat MLflow params: dotted keys, string values of bounded length."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Longer values (e.g. a per-voxel layer list) are cut; the full config is logged as an artifact.
MAX_PARAM_CHARS = 500
_CUT = "…(truncated)"


def flatten_params(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{"a.b.c": "value"} from nested mappings; lists stay one value."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, prefix=f"{name}."))
        else:
            text = str(value)
            if len(text) > MAX_PARAM_CHARS:
                text = text[: MAX_PARAM_CHARS - len(_CUT)] + _CUT
            flat[name] = text
    return flat
