"""Configs as flat MLflow params: dotted keys, string values of bounded length."""

from __future__ import annotations

import json
import re
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


def readable_json(data: Any, indent: int = 1) -> str:
    """JSON with nested mappings indented and lists of numbers/strings on one line (a 1008-voxel layer map is
    one line, not 1008); parses back to exactly `data`."""
    pad = " " * indent

    def render(value: Any, depth: int) -> str:
        if isinstance(value, Mapping) and value:
            inner = ",\n".join(f"{pad * (depth + 1)}{json.dumps(str(k))}: {render(v, depth + 1)}"
                               for k, v in value.items())
            return "{\n" + inner + "\n" + pad * depth + "}"
        if isinstance(value, list | tuple) and any(isinstance(v, Mapping | list | tuple) for v in value):
            inner = ",\n".join(f"{pad * (depth + 1)}{render(v, depth + 1)}" for v in value)
            return "[\n" + inner + "\n" + pad * depth + "]"
        return json.dumps(value)

    return render(data, 0) + "\n"


_PER_ENERGY = re.compile(r"^(?P<stage>.+?)\.(?P<gev>\d+(?:\.\d+)?)GeV\.(?P<name>.+)$")


def energy_step(key: str) -> tuple[str, int]:
    """(MLflow metric name, step) of a result key: per-energy keys `PREFIX.<E>GeV.NAME` become `PREFIX.NAME` at
    step E in MeV, so the UI draws e.g. bias vs energy ("calibrate.50GeV.mode" → ("calibrate.mode", 50000));
    other keys → (key, 0)."""
    match = _PER_ENERGY.match(key)
    if match is None:
        return key, 0
    return f"{match['stage']}.{match['name']}", round(float(match["gev"]) * 1000)
