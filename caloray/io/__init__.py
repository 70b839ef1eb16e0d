"""Shower files: CaloChallenge HDF5 read/write with validation, Ray Data reader and shard writers."""

from caloray.io.hdf5 import (
    ENERGY_KEY,
    SHOWERS_KEY,
    ShowerFileInfo,
    inspect_shower_file,
    read_shower_file,
    read_shower_rows,
    write_showers,
)
from caloray.io.paths import expand_paths
from caloray.io.raydata import ShowerDatasource, preserved_order, read_showers, write_dataset

__all__ = [
    "ENERGY_KEY",
    "SHOWERS_KEY",
    "ShowerDatasource",
    "ShowerFileInfo",
    "expand_paths",
    "inspect_shower_file",
    "preserved_order",
    "read_shower_file",
    "read_shower_rows",
    "read_showers",
    "write_dataset",
    "write_showers",
]
