"""Showers in ROOT files (read with uproot): a TTree mapped onto the CaloChallenge layout.

Mapping (`RootLayout`, all names configurable): one TTree (default: the file's only TTree) with one entry per
shower, a scalar floating-point branch `incident_energies` (MeV) and a fixed-size floating-point array branch
`showers` of n_voxels values (MeV, CaloChallenge voxel order). Other branches of fixed shape are per-row extras;
a `TObjString` named `geometry` plays the role of the HDF5 `geometry` attribute. Jagged (variable-length)
showers, a missing tree or branch, mismatched entries and non-float types are refused with one-line errors that
name the file, the tree/branch and the problem, as `caloray.io.hdf5` does for HDF5.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from caloray.errors import ShowerFileError
from caloray.geometry import Geometry
from caloray.io.paths import Location, as_location, is_url, open_binary, url_size

if TYPE_CHECKING:  # hdf5 imports this module to dispatch .root files; the reverse import happens at call time
    from caloray.io.hdf5 import ShowerFileInfo

ROOT_SUFFIX = ".root"


def is_root_file(location: str | Path) -> bool:
    """Whether `location` names a ROOT file (by its `.root` suffix)."""
    return str(location).lower().endswith(ROOT_SUFFIX)


@dataclass(frozen=True)
class RootLayout:
    """Where the CaloChallenge datasets live in a ROOT file: tree name (None: the only TTree) and branch names."""

    tree: str | None = None
    energies: str = "incident_energies"
    showers: str = "showers"

    @classmethod
    def parse(cls, spec: str | None) -> RootLayout:
        """'TREE:ENERGIES:SHOWERS' (empty parts keep the defaults, e.g. 'events' or 'events:e_inc:voxels')."""
        if not spec:
            return cls()
        parts = spec.split(":")
        if len(parts) > 3 or any(p != p.strip() for p in parts):
            raise ShowerFileError(f"--root-layout {spec!r}: expected TREE[:ENERGY_BRANCH[:SHOWERS_BRANCH]]")
        tree, energies, showers = [*parts, "", "", ""][:3]
        default = cls()
        return cls(tree or None, energies or default.energies, showers or default.showers)


def _missing(location: Location) -> None:
    if is_url(str(location)):
        size = url_size(str(location))
    else:
        path = Path(location)
        if not path.exists():
            raise ShowerFileError(f"{location}: file not found")
        size = path.stat().st_size
    if size == 0:
        raise ShowerFileError(f"{location}: file is empty (0 bytes)")


@contextmanager
def open_root(location: Location) -> Iterator[Any]:
    """The uproot directory of a local or fsspec-URL ROOT file, closed on exit."""
    import uproot

    _missing(location)
    handle = open_binary(str(location)) if is_url(str(location)) else None
    try:
        try:
            # A Path (not a str) keeps uproot from reading "name.root:object" colon syntax into local names.
            directory = uproot.open(handle if handle is not None else Path(location))
        except Exception as exc:  # uproot raises many types for damaged files; all mean the same to a user
            raise ShowerFileError(f"{location}: not a readable ROOT file (truncated or corrupt): "
                                  f"{type(exc).__name__}: {exc}") from None
        with directory:
            yield directory
    finally:
        if handle is not None:
            handle.close()


def _tree(directory: Any, location: Location, layout: RootLayout) -> tuple[str, Any]:
    classes = {key.split(";")[0]: name for key, name in directory.classnames().items()}
    if layout.tree is not None:
        if layout.tree not in classes:
            raise ShowerFileError(f"{location}: missing TTree {layout.tree!r} (found: {sorted(classes)})")
        if classes[layout.tree] != "TTree":
            raise ShowerFileError(f"{location}: {layout.tree!r} is a {classes[layout.tree]}, expected a TTree")
        return layout.tree, directory[layout.tree]
    trees = sorted(k for k, c in classes.items() if c == "TTree")
    if len(trees) != 1:
        found = "no TTree" if not trees else f"several TTrees {trees}"
        raise ShowerFileError(f"{location}: holds {found}; name the tree with --root-layout TREE "
                              f"(objects: {sorted(classes)})")
    return trees[0], directory[trees[0]]


def _branch_dtype(tree: Any, name: str, where: str) -> np.dtype:
    """The numpy dtype of one entry of a fixed-shape branch (subarray dtype for arrays)."""
    from uproot.interpretation.numerical import AsDtype

    if name not in tree.keys(recursive=False):
        raise ShowerFileError(f"{where}: missing branch {name!r} (found: {sorted(tree.keys(recursive=False))})")
    interpretation = tree[name].interpretation
    if not isinstance(interpretation, AsDtype):
        raise ShowerFileError(f"{where}, branch {name!r}: type {tree[name].typename!r} is not a fixed-size "
                              "numeric array per entry (variable-length or object branches are not supported)")
    return np.dtype(interpretation.to_dtype)


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=")


def _as_native(values: np.ndarray) -> np.ndarray:
    """ROOT stores big-endian numbers; callers (torch, Arrow) want the machine's byte order."""
    return values.astype(_native(values.dtype), copy=False)


def inspect_root_file(location: str | Path, geometry: Geometry | None = None,
                      layout: RootLayout | None = None) -> ShowerFileInfo:
    """The `ShowerFileInfo` of a ROOT file: tree and branches checked as for HDF5 (no voxel data loaded)."""
    from caloray.io.hdf5 import ShowerFileInfo, check_geometry

    location = as_location(location)
    layout = layout or RootLayout()
    with open_root(location) as directory:
        tree_name, tree = _tree(directory, location, layout)
        where = f"{location}: TTree {tree_name!r}"
        showers = _branch_dtype(tree, layout.showers, where)
        energies = _branch_dtype(tree, layout.energies, where)
        if len(showers.shape) != 1:
            raise ShowerFileError(f"{where}, branch {layout.showers!r}: holds {showers.shape or 'a scalar'} per "
                                  "entry, expected a fixed-size array of n_voxels floats")
        if energies.shape not in ((), (1,)):
            raise ShowerFileError(f"{where}, branch {layout.energies!r}: holds {energies.shape} per entry, "
                                  "expected one incident energy (MeV)")
        for key, dtype in ((layout.showers, showers), (layout.energies, energies)):
            if dtype.base.kind != "f":
                raise ShowerFileError(f"{where}, branch {key!r}: dtype {dtype.base}, expected floating point")
        n = int(tree.num_entries)
        if n == 0:
            raise ShowerFileError(f"{where}: holds no showers (zero entries)")
        attrs: dict[str, Any] = {"root_tree": tree_name}
        if "geometry" in directory.keys(cycle=False):
            attrs["geometry"] = str(directory["geometry"])
        per_row = []
        for key in tree.keys(recursive=False):
            if key not in (layout.showers, layout.energies):
                try:
                    _branch_dtype(tree, key, where)
                    per_row.append(key)
                except ShowerFileError:
                    continue
        info = ShowerFileInfo(location, n, int(showers.shape[0]), _native(showers.base), _native(energies.base),
                              attrs, tuple(per_row))
    check_geometry(info, geometry, layout.showers)
    return info


def read_root_rows(location: str | Path, start: int = 0, stop: int | None = None, *,
                   extra_keys: tuple[str, ...] = (), validate: bool = True,
                   layout: RootLayout | None = None) -> dict[str, np.ndarray]:
    """Entries [start, stop) as {"showers": (n, V), "incident_energies": (n,), **extra_keys}, native byte order.

    Keys are the CaloChallenge names whatever the branch names are, so callers do not see the mapping.
    """
    from caloray.io.hdf5 import ENERGY_KEY, SHOWERS_KEY, validate_energies

    location = as_location(location)
    layout = layout or RootLayout()
    with open_root(location) as directory:
        tree_name, tree = _tree(directory, location, layout)
        where = f"{location}: TTree {tree_name!r}"
        for key in (layout.showers, layout.energies, *extra_keys):
            _branch_dtype(tree, key, where)
        try:
            arrays = tree.arrays([layout.showers, layout.energies, *extra_keys], entry_start=start,
                                 entry_stop=stop, library="np")
        except Exception as exc:  # damaged baskets surface as several uproot/zlib error types
            raise ShowerFileError(f"{where}: entries {start}:{stop} unreadable (truncated or corrupt): "
                                  f"{type(exc).__name__}: {exc}") from None
    showers = _as_native(arrays[layout.showers])
    energies = _as_native(arrays[layout.energies]).reshape(-1)
    if validate:
        validate_energies(location, f"{tree_name}/{layout.energies}", energies, start)
        validate_energies(location, f"{tree_name}/{layout.showers}", showers, start)
    return {SHOWERS_KEY: showers, ENERGY_KEY: energies, **{k: _as_native(arrays[k]) for k in extra_keys}}
