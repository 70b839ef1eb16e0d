"""Pre-flight checks of shower inputs, run before Ray starts so that bad input fails in a second, not in an actor.

Structure is always checked (the files exist and are readable HDF5/ROOT, keys, ranks, lengths, voxel count);
values (NaN, ±inf, negative energies) only when asked, since that reads every shower once. Errors are
`ShowerFileError`s naming the file, the key (and row) and the problem.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from caloray.errors import ShowerFileError
from caloray.geometry import Geometry
from caloray.io.hdf5 import SHOWERS_KEY, ShowerFileInfo, inspect_shower_file, read_shower_rows
from caloray.io.paths import expand_paths
from caloray.io.root import RootLayout

#: Showers read at once by the value scan: bounded memory (10⁴ × 6480 float32 voxels ≈ 260 MB for ds2).
SCAN_ROWS = 10_000


def scan_values(info: ShowerFileInfo, layout: RootLayout | None = None, rows: int = SCAN_ROWS) -> None:
    """Read every shower of a checked file in blocks of `rows`; raise at the first NaN, ±inf or negative energy."""
    for start in range(0, info.n_showers, rows):
        read_shower_rows(info.path, start, min(start + rows, info.n_showers), layout=layout)


def check_shower_inputs(
    inputs: str | Path | Iterable[str | Path],
    *,
    geometry: Geometry | None = None,
    voxels: Collection[int] = (),
    expected_by: str = "the model",
    layout: RootLayout | None = None,
    check_values: bool = False,
) -> list[ShowerFileInfo]:
    """Check every shower file of `inputs` (files, folders, globs, URLs); returns their structure in input order.

    geometry: the voxel count (and the `geometry` attribute, when a file has one) must match it.
    voxels: allowed voxel counts per shower (e.g. the model's, or fine and coarse counts), named `expected_by`
    in the error. check_values: also read all showers and reject NaN, ±inf and negative energies.
    """
    infos = [inspect_shower_file(path, geometry, layout) for path in expand_paths(inputs)]
    allowed = sorted(set(voxels))
    for info in infos:
        if allowed and info.n_voxels not in allowed:
            want = " or ".join(map(str, allowed))
            raise ShowerFileError(f"{info.path}: {SHOWERS_KEY!r} has {info.n_voxels} voxels per shower, "
                                  f"{expected_by} expects {want} (another geometry?)")
    if check_values:
        for info in infos:
            scan_values(info, layout)
    return infos
