"""Expand user-given inputs (files, folders, glob patterns) into a sorted list of shower files."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from caloray.errors import ShowerFileError

SHOWER_SUFFIXES = (".h5", ".hdf5", ".hdf")


def expand_paths(inputs: str | Path | Iterable[str | Path]) -> list[Path]:
    """Files as given, folders → their `*.h5/*.hdf5` files, globs expanded; sorted, no duplicates."""
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.suffix in SHOWER_SUFFIXES and not p.name.startswith("."))
            if not matches:
                raise ShowerFileError(f"{path}: folder holds no shower files ({', '.join(SHOWER_SUFFIXES)})")
            found.extend(matches)
        elif any(ch in str(item) for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(item)))
            if not matches:
                raise ShowerFileError(f"{item}: pattern matches no file")
            found.extend(matches)
        else:
            found.append(path)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ShowerFileError("no input files given")
    return unique
