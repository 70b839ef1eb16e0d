"""What identifies a generation, the guard against mixing generations in one folder, and `manifest.json`.

The identity (model reference and checkpoint digest, layer model, seed, n_showers, shard_size, canonical energy
spec) decides every shard's bytes; its short sha256 is the run fingerprint stored in `generation.json` (written
when a generation starts), in every shard's attributes and in the manifest. Rerunning into a folder made with
another identity is refused instead of mixing shards.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import h5py

from caloray.generate.models import GenerationError
from caloray.generate.plan import SHARD_PREFIX
from caloray.provenance import write_json_atomic

MANIFEST_FILE = "manifest.json"
IDENTITY_FILE = "generation.json"
FORMAT = "caloray-generation"
VERSION = 1


def fingerprint(identity: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of the identity's canonical JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _differences(stored: dict[str, Any], identity: dict[str, Any]) -> str:
    keys = sorted(set(stored) | set(identity))
    return "; ".join(f"{k}: {stored.get(k)!r} there, {identity.get(k)!r} now" for k in keys
                     if stored.get(k) != identity.get(k))


def _shard_fingerprint(out_dir: Path) -> str | None:
    for path in sorted(out_dir.glob(f"{SHARD_PREFIX}-*.h5")):
        try:
            with h5py.File(path, "r") as f:
                value = f.attrs.get("run_fingerprint")
        except OSError:
            continue
        if value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def check_out_dir(out_dir: Path, identity: dict[str, Any]) -> None:
    """Raise `GenerationError` if `out_dir` holds a generation with another identity."""
    for name in (IDENTITY_FILE, MANIFEST_FILE):
        stored = (read_json(out_dir / name) or {}).get("identity")
        if stored is not None:
            if stored != identity:
                raise GenerationError(f"{out_dir} holds a generation with another configuration "
                                      f"({_differences(stored, identity)}); choose a new output folder or rerun "
                                      "with the original settings")
            return
    found = _shard_fingerprint(out_dir)
    if found is not None and found != fingerprint(identity):
        raise GenerationError(f"{out_dir} holds shards of another generation (fingerprint {found}, this one "
                              f"{fingerprint(identity)}); choose a new output folder")


def write_identity(out_dir: Path, identity: dict[str, Any], config: dict[str, Any]) -> Path:
    """`generation.json`: the identity, its fingerprint and the config that started the generation."""
    path = out_dir / IDENTITY_FILE
    if path.is_file() and (read_json(path) or {}).get("identity") == identity:
        return path
    return write_json_atomic(path, {"format": FORMAT, "version": VERSION, "identity": identity,
                                    "fingerprint": fingerprint(identity), "config": config})


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of `out_dir`, or None (missing or unreadable: the shards are then re-verified)."""
    return read_json(out_dir / MANIFEST_FILE)
