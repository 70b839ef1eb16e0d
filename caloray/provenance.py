"""Provenance records written next to every output: what made it, with which config and seed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import secrets
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

#: Set by job submitters (Ray jobs do not upload `.git`): the revision the job's code was taken from.
GIT_REVISION_ENV = "CALORAY_GIT_REVISION"


def git_revision() -> str:
    """`CALORAY_GIT_REVISION` when set, else the short git revision of the caloray checkout, else "unknown"."""
    if os.environ.get(GIT_REVISION_ENV):
        return os.environ[GIT_REVISION_ENV].strip()
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(config: Any = None, **extra: Any) -> dict[str, Any]:
    """Versions, git revision, host and time, plus the (dataclass) config and extra fields."""
    versions = {}
    for package in ("caloray", "ray", "torch", "zuko", "mlflow", "numpy", "h5py"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    record: dict[str, Any] = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_revision": git_revision(),
        "host": platform.node(),
        "python": platform.python_version(),
        "versions": versions,
    }
    if config is not None:
        record["config"] = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    record.update(extra)
    return record


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` on a unique temporary name in `path`'s folder, then rename it over `path`, so readers
    never see a half-written file; the temporary file is removed if `write` fails.

    The temporary name is `.NAME.tmpPID-RANDOM`: a killed writer's leftovers match `.NAME.tmp*` (resumers delete
    them), and `write` creates the file itself, so it gets the usual umask permissions (not mkstemp's 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{secrets.token_hex(4)}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    """Write `data` as indented, key-sorted JSON with `atomic_write` (readers never see half a file)."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_provenance(path: str | Path, config: Any = None, **extra: Any) -> Path:
    """Write `provenance(config, **extra)` as JSON (atomically)."""
    return write_json_atomic(path, provenance(config, **extra))
