"""CaloChallenge-format HDF5 shower files: inspect, read row ranges with validation, write atomically.

Layout: `incident_energies` (N, 1) MeV and `showers` (N, n_voxels) MeV per voxel (float32 or float64).
Other datasets and file attributes are kept when copying; caloray adds a `geometry` attribute.
Inputs are local paths or fsspec URLs (`s3://…`, `file://…`); `.root` files are read through `caloray.io.root`
with the same checks and errors, so every reader of shower files takes ROOT input too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from caloray.errors import ShowerFileError
from caloray.geometry import Geometry
from caloray.io.paths import Location, as_location, is_url, open_binary, url_size
from caloray.io.root import RootLayout, inspect_root_file, is_root_file, read_root_rows
from caloray.provenance import atomic_write

SHOWERS_KEY = "showers"
ENERGY_KEY = "incident_energies"


@dataclass(frozen=True)
class ShowerFileInfo:
    """Structure of a validated shower file (no voxel data loaded)."""

    path: Location
    n_showers: int
    n_voxels: int
    showers_dtype: np.dtype
    energy_dtype: np.dtype
    attrs: dict[str, Any] = field(default_factory=dict)
    per_row_keys: tuple[str, ...] = ()

    @property
    def geometry(self) -> str | None:
        value = self.attrs.get("geometry")
        return None if value is None else str(value)


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


@contextmanager
def _open(path: Location) -> Iterator[h5py.File]:
    """The HDF5 file at a local path, or at an fsspec URL through a file object (h5py reads from one)."""
    if is_url(path):
        size = url_size(str(path))
    elif not Path(path).exists():
        raise ShowerFileError(f"{path}: file not found")
    else:
        size = Path(path).stat().st_size
    if size == 0:
        raise ShowerFileError(f"{path}: file is empty (0 bytes)")
    handle = open_binary(str(path)) if is_url(path) else None
    try:
        try:
            f = h5py.File(handle if handle is not None else path, "r")
        except OSError as exc:
            raise ShowerFileError(f"{path}: not a readable HDF5 file (truncated or corrupt): {exc}") from None
        with f:
            yield f
    finally:
        if handle is not None:
            handle.close()


def check_geometry(info: ShowerFileInfo, geometry: Geometry | None, key: str = SHOWERS_KEY) -> None:
    """Raise if the file's voxel count or its `geometry` attribute disagrees with `geometry`."""
    if geometry is None:
        return
    if info.n_voxels != geometry.n_voxels:
        raise ShowerFileError(
            f"{info.path}: {key!r} has {info.n_voxels} voxels per shower, geometry "
            f"{geometry.name!r} has {geometry.n_voxels}"
        )
    if info.geometry is not None and info.geometry != geometry.name:
        raise ShowerFileError(f"{info.path}: attribute 'geometry' is {info.geometry!r}, expected {geometry.name!r}")


def inspect_shower_file(path: str | Path, geometry: Geometry | None = None,
                        layout: RootLayout | None = None) -> ShowerFileInfo:
    """Check keys, ranks, lengths and (optionally) the voxel count against `geometry`.

    `path` is a local path or an fsspec URL; `.root` files are checked by `inspect_root_file` with `layout`.
    """
    if is_root_file(path):
        return inspect_root_file(path, geometry, layout)
    path = as_location(path)
    with _open(path) as f:
        for key in (ENERGY_KEY, SHOWERS_KEY):
            if key not in f:
                raise ShowerFileError(f"{path}: missing dataset {key!r} (found: {sorted(f.keys())})")
            if not isinstance(f[key], h5py.Dataset):
                raise ShowerFileError(f"{path}: {key!r} is a group, expected a dataset")
        showers, energies = f[SHOWERS_KEY], f[ENERGY_KEY]
        if showers.ndim != 2:
            raise ShowerFileError(f"{path}: {SHOWERS_KEY!r} has rank {showers.ndim}, expected 2 (N, n_voxels)")
        if energies.ndim not in (1, 2) or (energies.ndim == 2 and energies.shape[1] != 1):
            raise ShowerFileError(f"{path}: {ENERGY_KEY!r} has shape {energies.shape}, expected (N, 1)")
        n = showers.shape[0]
        if energies.shape[0] != n:
            raise ShowerFileError(
                f"{path}: {ENERGY_KEY!r} has {energies.shape[0]} rows but {SHOWERS_KEY!r} has {n}"
            )
        if n == 0:
            raise ShowerFileError(f"{path}: {SHOWERS_KEY!r} holds no showers (zero-length)")
        for key, ds in ((SHOWERS_KEY, showers), (ENERGY_KEY, energies)):
            if ds.dtype.kind != "f":
                raise ShowerFileError(f"{path}: {key!r} has dtype {ds.dtype}, expected floating point")
        attrs = {k: _attr(v) for k, v in f.attrs.items()}
        per_row = tuple(
            k for k in f if k not in (SHOWERS_KEY, ENERGY_KEY)
            and isinstance(f[k], h5py.Dataset) and f[k].ndim >= 1 and f[k].shape[0] == n
        )
        info = ShowerFileInfo(path, n, showers.shape[1], showers.dtype, energies.dtype, attrs, per_row)
    check_geometry(info, geometry)
    return info


def validate_energies(path: Location, key: str, values: np.ndarray, row_offset: int = 0) -> None:
    """Raise naming file, key and first bad row if `values` hold NaN, ±inf or negative energies."""
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0]) + row_offset
        raise ShowerFileError(f"{path}: {key!r} row {row} holds a non-finite value (NaN or inf)")
    negative = values < 0
    if negative.any():
        row = int(np.argwhere(negative)[0][0]) + row_offset
        raise ShowerFileError(f"{path}: {key!r} row {row} holds a negative energy")


def read_shower_rows(
    path: str | Path,
    start: int = 0,
    stop: int | None = None,
    *,
    extra_keys: tuple[str, ...] = (),
    validate: bool = True,
    layout: RootLayout | None = None,
) -> dict[str, np.ndarray]:
    """Rows [start, stop) as {"showers": (n, V), "incident_energies": (n,), **extra_keys}.

    Dtypes are those stored in the file, so a read → write round trip is bit-exact. `.root` files are read by
    `read_root_rows` with `layout` (branch names → these keys).
    """
    if is_root_file(path):
        return read_root_rows(path, start, stop, extra_keys=extra_keys, validate=validate, layout=layout)
    path = as_location(path)
    with _open(path) as f:
        try:
            showers = f[SHOWERS_KEY][start:stop]
            energies = f[ENERGY_KEY][start:stop].reshape(-1)
            extra = {k: f[k][start:stop] for k in extra_keys}
        except KeyError as exc:
            raise ShowerFileError(f"{path}: missing dataset {exc}") from None
        except OSError as exc:
            raise ShowerFileError(f"{path}: rows {start}:{stop} unreadable (truncated or corrupt): {exc}") from None
    if validate:
        validate_energies(path, ENERGY_KEY, energies, start)
        validate_energies(path, SHOWERS_KEY, showers, start)
    return {SHOWERS_KEY: showers, ENERGY_KEY: energies, **extra}


def read_shower_file(path: str | Path, geometry: Geometry | None = None,
                     layout: RootLayout | None = None) -> dict[str, np.ndarray]:
    """The whole file (validated); use the Ray reader for files that do not fit in memory."""
    inspect_shower_file(path, geometry, layout)
    return read_shower_rows(path, layout=layout)


def _json_safe(value: Any) -> Any:
    if isinstance(value, str | int | float | bool | np.generic | np.ndarray | bytes):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _row_chunks(showers: np.ndarray) -> tuple[int, int] | None:
    # ~1 MiB chunks of whole rows: row-range reads decompress little beyond what they need.
    if len(showers) == 0:
        return None
    rows = max(1, min(len(showers), (1 << 20) // max(1, showers.shape[1] * showers.itemsize)))
    return rows, showers.shape[1]


def write_showers(
    path: str | Path,
    showers: np.ndarray,
    incident_energies_mev: np.ndarray,
    *,
    geometry: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
    compression: str | None = "gzip",
) -> Path:
    """Write a CaloChallenge file atomically (temp name in the same folder, then rename).

    `showers` (N, V) and `incident_energies_mev` (N,) or (N, 1) keep their dtypes; `extra` holds
    further per-row datasets; non-scalar attributes are stored as JSON strings.
    """
    path = Path(path)
    showers = np.asarray(showers)
    energies = np.asarray(incident_energies_mev).reshape(-1, 1)
    if showers.ndim != 2 or showers.shape[0] != energies.shape[0]:
        raise ShowerFileError(
            f"{path}: cannot write showers of shape {showers.shape} with {energies.shape[0]} incident energies"
        )

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(ENERGY_KEY, data=energies, compression=compression)
            f.create_dataset(SHOWERS_KEY, data=showers, compression=compression, chunks=_row_chunks(showers))
            for key, values in (extra or {}).items():
                f.create_dataset(key, data=np.asarray(values), compression=compression)
            for key, value in (attrs or {}).items():
                f.attrs[key] = _json_safe(value)
            if geometry is not None:
                f.attrs["geometry"] = geometry

    return atomic_write(path, write)
