"""Shower files: CaloChallenge HDF5 and ROOT (local or fsspec URLs) read with validation, HDF5 write, Ray Data
reader.

The Ray Data names (`ShowerDatasource`, `read_showers`, `preserved_order`) load
`caloray.io.raydata` on first use, so reading or writing an HDF5 file never imports Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

from caloray.io.hdf5 import (
    ENERGY_KEY,
    SHOWERS_KEY,
    ShowerFileInfo,
    inspect_shower_file,
    read_shower_file,
    read_shower_rows,
    write_showers,
)
from caloray.io.paths import expand_paths, is_url
from caloray.io.root import RootLayout

_RAY_NAMES = ("ShowerDatasource", "preserved_order", "read_showers")


def __getattr__(name: str) -> Any:
    # Module-level __getattr__ (PEP 562): only the Ray Data reader/writers pull in Ray, and only when asked for.
    if name in _RAY_NAMES:
        return getattr(importlib.import_module("caloray.io.raydata"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENERGY_KEY",
    "SHOWERS_KEY",
    "RootLayout",
    "ShowerDatasource",
    "ShowerFileInfo",
    "expand_paths",
    "inspect_shower_file",
    "is_url",
    "preserved_order",
    "read_shower_file",
    "read_shower_rows",
    "read_showers",
    "write_showers",
]
