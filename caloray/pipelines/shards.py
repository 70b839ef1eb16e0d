"""The shard runner every sharded workflow uses: plan units → actor pool → pure per-unit function → atomic
write → journal line → manifest.

A run is an *identity* (workflow, model name + version or checkpoint sha256, seed, settings) and `Unit`s (output
file name and key: input name + sha256 + row range, or shard index + row range). A `UnitWorker` loads its model
once per actor (`setup`), computes a unit (`compute`, deterministic in key and identity, never in the output
path) and writes it (`write`). Guarantees, the same for every workflow: the folder is locked (`.caloray.lock`
names the PID and host holding it; stale temporary files are removed only under the lock); a folder of another
identity is refused naming what differs; a unit is reused only when its record matches the run, key and row
count and its file's sha256 (truncated, altered or unrecorded: recomputed); `_run.json` (written before any unit)
and `_manifest.json` (at the end) describe the settings the files were computed with.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ray

from caloray.errors import CalorayError, ConfigError
from caloray.io.paths import Location, is_url
from caloray.provenance import atomic_write, sha256_file, write_json_atomic
from caloray.runtime import init_ray, worker_device

# Bookkeeping names start with "_" or ".", which Parquet dataset readers skip when given the folder.
LOCK_FILE = ".caloray.lock"
RUN_FILE = "_run.json"
JOURNAL_FILE = "_units.jsonl"
MANIFEST_FILE = "_manifest.json"
FORMAT = "caloray-shards"


@dataclass(frozen=True)
class Unit:
    """One unit of work: its position, output file name, row count, key (JSON-able, what makes it unique) and
    `source`, where its input lies now (not part of its identity: a moved input is the same input)."""

    index: int
    name: str
    rows: int
    key: dict[str, Any]
    source: str = ""


@dataclass(frozen=True)
class UnitRecord:
    """A finished unit: run fingerprint, file name, rows, key, sha256 of the file, compute seconds and worker
    statistics (e.g. peak memory, a content checksum)."""

    index: int
    file: str
    rows: int
    key: dict[str, Any]
    sha256: str
    run: str
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


class UnitWorker:
    """What a workflow plugs into the runner (picklable: models travel as loaders, never as weights)."""

    def setup(self, device: str) -> None:
        """Load what every unit needs, once per actor; `device` is "cuda" when the actor holds a GPU."""

    def compute(self, unit: Unit) -> Any:
        """The unit's result (arrays/columns), deterministic in the unit and the run's identity."""
        raise NotImplementedError

    def write(self, path: Path, result: Any) -> None:
        """Write `result` to `path` (a temporary name; the runner renames it into place)."""
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """Statistics of the unit just written, recorded with it (e.g. peak memory, a content checksum)."""
        return {}


def fingerprint(identity: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of the identity's canonical JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def unit_seed(seed: int, *parts: Any) -> int:
    """63-bit seed of a unit from the run seed and the unit's key parts (input checksum, row range…).

    Never from the output path: the same run into two folders gives identical units.
    """
    text = ":".join(str(p) for p in (int(seed), *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def row_units(prefix: str, suffix: str, inputs: Sequence[tuple[Location, int]], rows_per_unit: int) -> list[Unit]:
    """Units of `rows_per_unit` rows over (input, n_rows) pairs, named `{prefix}-{input:04d}-{stem}-{start}-{stop}`.

    Keys hold the input's file name and checksum and the row range, not its folder, so a moved input is the
    same input.
    """
    if rows_per_unit < 1:
        raise ConfigError(f"rows_per_unit must be ≥ 1, got {rows_per_unit}")
    units = []
    for i, (path, n_rows) in enumerate(inputs):
        # a URL is identified by itself: its bytes are not downloaded twice
        name, checksum = Path(str(path)).name, str(path) if is_url(path) else sha256_file(path)
        for start in range(0, n_rows, rows_per_unit):
            stop = min(start + rows_per_unit, n_rows)
            units.append(Unit(len(units), f"{prefix}-{i:04d}-{Path(name).stem}-{start:09d}-{stop:09d}{suffix}",
                              stop - start, {"input": name, "input_sha256": checksum, "start": start, "stop": stop},
                              str(path)))
    return units


@contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `out_dir`; refuse at once (CalorayError naming PID and host) when it is busy."""
    path = out_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise CalorayError(f"{out_dir}: output folder is in use by {holder}; wait for that run to finish or "
                           "choose another output folder") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} on host {platform.node()}\n".encode(), 0)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def check_identity(out_dir: Path, identity: dict[str, Any]) -> None:
    """Refuse (ConfigError, one line naming the differing settings) a folder holding a run of another identity."""
    stored = (_read_json(out_dir / RUN_FILE) or {}).get("identity")
    current = json.loads(json.dumps(identity, default=str))
    if stored is not None and stored != current:
        old, new = _flatten(stored), _flatten(current)
        differ = "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in sorted(set(old) | set(new))
                           if old.get(k) != new.get(k))
        raise ConfigError(f"{out_dir / RUN_FILE}: the folder holds a run with another configuration ({differ}); "
                          "rerun with the original settings or choose a new output folder")


def remove_temp_files(out_dir: Path) -> list[Path]:
    """Delete temporary files of interrupted writers (`.NAME.*tmp*`); call only while holding the lock."""
    stale = sorted(p for p in out_dir.glob(".*tmp*") if p.name != LOCK_FILE and p.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def read_records(out_dir: Path) -> dict[str, UnitRecord]:
    """Records of finished units by file name: the manifest's, then the journal's (later lines win)."""
    entries: list[dict[str, Any]] = list((_read_json(out_dir / MANIFEST_FILE) or {}).get("units", []))
    journal = out_dir / JOURNAL_FILE
    if journal.is_file():
        for line in journal.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash
    records = {}
    for entry in entries:
        try:
            record = UnitRecord(**entry)
        except TypeError:
            continue
        records[record.file] = record
    return records


def append_journal(out_dir: Path, record: UnitRecord) -> None:
    """Append one finished unit to the journal (flushed and fsynced, so a crash loses at most that line)."""
    path = out_dir / JOURNAL_FILE
    cut = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "a") as f:
        f.write(("\n" if cut else "") + json.dumps(asdict(record), sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def reusable(out_dir: Path, unit: Unit, record: UnitRecord | None, run_fingerprint: str) -> bool:
    """True when `unit`'s file in `out_dir` is the one `record` describes, written by this run's identity:
    same run fingerprint, file name, row count and key, and the file's sha256 (truncated or altered: False)."""
    path = out_dir / unit.name
    return (record is not None and record.run == run_fingerprint and record.file == unit.name
            and record.rows == unit.rows and record.key == unit.key and path.is_file()
            and sha256_file(path) == record.sha256)


class _UnitActor:
    """Ray actor: sets the worker up once, then computes, writes and checksums every unit it receives."""

    def __init__(self, worker: UnitWorker, out_dir: str, run_fingerprint: str, use_gpu: bool) -> None:
        self.worker, self.out_dir, self.run_fingerprint = worker, Path(out_dir), run_fingerprint
        worker.setup(worker_device(use_gpu))

    def run(self, unit: Unit) -> UnitRecord:
        began = time.perf_counter()
        result = self.worker.compute(unit)
        path = atomic_write(self.out_dir / unit.name, lambda tmp: self.worker.write(tmp, result))
        return UnitRecord(unit.index, unit.name, unit.rows, unit.key, sha256_file(path), self.run_fingerprint,
                          time.perf_counter() - began, self.worker.stats())


def _unit_error(exc: ray.exceptions.RayError, finished: int, total: int) -> CalorayError:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, CalorayError):
        return cause  # the worker's own one-line error (file, row, problem)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CalorayError(f"stopped after {finished} of {total} unit(s) ({type(exc).__name__}: {first}); the "
                        "finished units are kept: rerun the same command to resume")


def _execute(todo: Sequence[Unit], worker: UnitWorker, out_dir: Path, run_fingerprint: str, actors: int | None,
             use_gpu: bool, max_restarts: int) -> Iterator[UnitRecord]:
    from ray.util import ActorPool

    resources = ray.cluster_resources()
    available = int(resources.get("GPU", 0)) if use_gpu else int(resources.get("CPU", 1))
    n_actors = max(1, min(len(todo), actors or available))
    remote = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0, max_restarts=max_restarts,
                        max_task_retries=max_restarts)(_UnitActor)
    handles = [remote.remote(worker, str(out_dir), run_fingerprint, use_gpu) for _ in range(n_actors)]
    finished = 0
    try:
        for record in ActorPool(handles).map_unordered(lambda actor, unit: actor.run.remote(unit), todo):
            finished += 1
            yield record
    except ray.exceptions.RayError as exc:
        raise _unit_error(exc, finished, len(todo)) from exc
    finally:
        for handle in handles:
            ray.kill(handle)


def prepare_folder(out_dir: Path, identity: dict[str, Any]) -> None:
    """Under the folder lock: refuse a folder of another identity, remove stale temporary files, then record
    the identity in `_run.json` (before any unit, so an interrupted run is still recognised)."""
    check_identity(out_dir, identity)
    remove_temp_files(out_dir)
    write_json_atomic(out_dir / RUN_FILE, {"format": FORMAT, "identity": identity,
                                           "fingerprint": fingerprint(identity)})


def execute_units(out_dir: Path, identity: dict[str, Any], units: Sequence[Unit], worker: UnitWorker, *,
                  actors: int | None = None, use_gpu: bool | None = None, max_restarts: int = 0,
                  progress: bool = False, manifest: dict[str, Any] | None = None) -> list[UnitRecord]:
    """Under the folder lock, after `prepare_folder`: reuse the verified units, compute the others, write the
    manifest; returns every unit's record in unit order. See `run_units`."""
    from tqdm.auto import tqdm

    run_fingerprint = fingerprint(identity)
    recorded = read_records(out_dir)
    done = {u.index: dataclasses.replace(recorded[u.name], index=u.index, seconds=0.0)
            for u in units if reusable(out_dir, u, recorded.get(u.name), run_fingerprint)}
    todo = [u for u in units if u.index not in done]
    if todo:
        if not ray.is_initialized():
            init_ray()
        gpu = bool(ray.cluster_resources().get("GPU", 0)) if use_gpu is None else use_gpu
        with tqdm(total=len(units), initial=len(done), unit="unit", disable=not progress) as bar:
            for record in _execute(todo, worker, out_dir, run_fingerprint, actors, gpu, max_restarts):
                append_journal(out_dir, record)
                done[record.index] = record
                bar.update(1)
        remove_temp_files(out_dir)  # of actors killed and restarted during this run
    records = [done[u.index] for u in units]
    write_json_atomic(out_dir / MANIFEST_FILE, {
        "format": FORMAT, "identity": identity, "fingerprint": run_fingerprint, **(manifest or {}),
        "total_rows": sum(r.rows for r in records), "units": [asdict(r) for r in records]})
    return records


def run_units(out_dir: str | Path, identity: dict[str, Any], units: Sequence[Unit], worker: UnitWorker, *,
              actors: int | None = None, use_gpu: bool | None = None, max_restarts: int = 0,
              progress: bool = False, manifest: dict[str, Any] | None = None) -> list[UnitRecord]:
    """Run (or resume) `units` into `out_dir` under its lock; returns every unit's record in unit order.

    Reused units come back with `seconds` 0 (this call did not compute them). `use_gpu` None: GPU actors when
    the cluster has GPUs. `max_restarts`: restarts of a crashed actor (its unit is retried). `manifest` adds
    fields to `_manifest.json`. Starts a local Ray when none is connected.
    """
    out_dir = Path(out_dir).resolve()  # workers write here: a shared filesystem on multi-node clusters
    out_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(out_dir):
        prepare_folder(out_dir, identity)
        return execute_units(out_dir, identity, units, worker, actors=actors, use_gpu=use_gpu,
                             max_restarts=max_restarts, progress=progress, manifest=manifest)
