"""Shower files: CaloChallenge HDF5 and ROOT (local or fsspec URLs) read with validation, HDF5 write, Ray Data
reader."""

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
from caloray.io.raydata import ShowerDatasource, preserved_order, read_showers
from caloray.io.root import RootLayout

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
