"""Expand user-given inputs (files, folders, glob patterns, fsspec URLs) into a sorted list of shower files.

Local inputs become resolved `Path`s; anything with a scheme (`s3://`, `gs://`, `file://`, `memory://`, any
fsspec protocol) stays a URL string, since `Path` would fold its `//`. Both kinds open through `open_binary`.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from caloray.errors import ShowerFileError

SHOWER_SUFFIXES = (".h5", ".hdf5", ".hdf", ".root")

#: A shower file: a local path or an fsspec URL.
Location = Path | str


def is_url(item: str | Path) -> bool:
    """True for `scheme://…` strings (fsspec URLs); False for local paths."""
    return isinstance(item, str) and "://" in item and item.split("://", 1)[0].isidentifier()


def as_location(item: str | Path) -> Location:
    """A URL string as given, anything else as a `Path`."""
    return item if is_url(item) else Path(item)


def file_name(location: Location) -> str:
    """The last path component (for messages and shard names)."""
    return str(location).rstrip("/").rsplit("/", 1)[-1]


def _filesystem(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # unknown protocol, or its fsspec backend is not installed
        raise ShowerFileError(f"{url}: cannot open this URL: {exc}") from None


def url_size(url: str) -> int:
    """Size in bytes of the file at `url`; raises `ShowerFileError` "file not found" when it does not exist."""
    fs, path = _filesystem(url)
    try:
        if not fs.isfile(path):
            raise ShowerFileError(f"{url}: file not found")
        return int(fs.size(path))
    except (OSError, PermissionError) as exc:
        raise ShowerFileError(f"{url}: cannot read: {exc}") from None


def open_binary(url: str) -> IO[bytes]:
    """A seekable binary file object for `url` (h5py and uproot both read from one); close it when done."""
    fs, path = _filesystem(url)
    try:
        return fs.open(path, "rb")
    except FileNotFoundError:
        raise ShowerFileError(f"{url}: file not found") from None
    except OSError as exc:
        raise ShowerFileError(f"{url}: cannot read: {exc}") from None


def _expand_url(item: str) -> list[str]:
    fs, path = _filesystem(item)
    if any(ch in path for ch in "*?["):
        matches = sorted(fs.glob(path))
        if not matches:
            raise ShowerFileError(f"{item}: pattern matches no file")
        return [fs.unstrip_protocol(p) for p in matches]
    if fs.isdir(path):
        matches = sorted(p for p in fs.ls(path, detail=False)
                         if p.endswith(SHOWER_SUFFIXES) and not file_name(p).startswith("."))
        if not matches:
            raise ShowerFileError(f"{item}: folder holds no shower files ({', '.join(SHOWER_SUFFIXES)})")
        return [fs.unstrip_protocol(p) for p in matches]
    return [item]


def expand_paths(inputs: str | Path | Iterable[str | Path]) -> list[Location]:
    """Files as given, folders → their `*.h5/*.hdf5/*.hdf/*.root` files, globs expanded; sorted, no duplicates.

    URLs are expanded on their own filesystem (folders listed, globs matched there) and kept as URL strings.
    """
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    found: list[Location] = []
    for item in items:
        if is_url(item):
            found.extend(_expand_url(item))
            continue
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
    unique = list(dict.fromkeys(p if isinstance(p, str) else p.resolve() for p in found))
    if not unique:
        raise ShowerFileError("no input files given")
    return unique
