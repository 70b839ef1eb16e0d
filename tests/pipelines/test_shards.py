"""The shard runner's pieces without Ray: verified reuse, the journal, the identity check, the lock, seeds."""

from __future__ import annotations

import dataclasses
import os
import platform

import h5py
import numpy as np
import pytest

from caloray.errors import CalorayError, ConfigError
from caloray.io import write_showers
from caloray.pipelines.shards import (
    JOURNAL_FILE,
    Unit,
    UnitRecord,
    append_journal,
    check_identity,
    folder_lock,
    prepare_folder,
    read_records,
    remove_temp_files,
    reusable,
    row_units,
    unit_seed,
)
from caloray.provenance import sha256_file

KEY = {"shard": 0, "start": 0, "stop": 10}


def test_reuse_needs_the_same_run_rows_key_and_file_checksum(tmp_path) -> None:
    path = write_showers(tmp_path / "shard-00000.h5", np.ones((10, 6), np.float32), np.full(10, 1e4, np.float32))
    unit = Unit(0, path.name, 10, KEY)
    record = UnitRecord(0, path.name, 10, KEY, sha256_file(path), run="f" * 16)
    assert reusable(tmp_path, unit, record, "f" * 16)
    assert not reusable(tmp_path, unit, None, "f" * 16)  # no record: recomputed
    assert not reusable(tmp_path, unit, record, "0" * 16)  # another run's shard
    assert not reusable(tmp_path, Unit(0, path.name, 11, KEY), record, "f" * 16)  # wrong row count
    assert not reusable(tmp_path, Unit(0, path.name, 10, {**KEY, "start": 1}), record, "f" * 16)  # other rows
    with h5py.File(path, "r+") as f:  # altered values (a valid HDF5 file, different content)
        f["showers"][0, 0] += 1.0
    assert not reusable(tmp_path, unit, record, "f" * 16)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert not reusable(tmp_path, unit, record, "f" * 16)
    assert reusable(tmp_path, unit, dataclasses.replace(record, sha256=sha256_file(path)), "f" * 16)  # the check


def test_journal_survives_a_cut_line(tmp_path) -> None:
    records = [UnitRecord(i, f"shard-{i:05d}.h5", 10, {"shard": i}, "a" * 64, "f" * 16, 0.5) for i in range(3)]
    append_journal(tmp_path, records[0])
    with open(tmp_path / JOURNAL_FILE, "a") as f:
        f.write('{"index": 1, "fi')  # a crash in the middle of a line
    append_journal(tmp_path, records[2])
    assert read_records(tmp_path) == {records[0].file: records[0], records[2].file: records[2]}


def test_another_identity_is_refused_naming_what_differs(tmp_path) -> None:
    identity = {"workflow": "calibrate", "seed": 0, "mle": {"n_scan": 24}}
    prepare_folder(tmp_path, identity)
    check_identity(tmp_path, identity)
    with pytest.raises(ConfigError, match=r"another configuration \(mle.n_scan: 24 there, 32 now\)") as error:
        check_identity(tmp_path, {**identity, "mle": {"n_scan": 32}})
    assert "\n" not in str(error.value) and "new output folder" in str(error.value)


def test_busy_folder_is_refused_and_its_temp_files_kept(tmp_path) -> None:
    (tmp_path / ".shard-00000.h5.x1.tmp").write_bytes(b"partial")
    with folder_lock(tmp_path):
        with pytest.raises(CalorayError, match=f"in use by PID {os.getpid()} on host {platform.node()}"):
            with folder_lock(tmp_path):
                pass
        assert (tmp_path / ".shard-00000.h5.x1.tmp").exists()
        assert [p.name for p in remove_temp_files(tmp_path)] == [".shard-00000.h5.x1.tmp"]
    with folder_lock(tmp_path):  # released on exit
        pass


def test_units_and_seeds_do_not_depend_on_folders(tmp_path) -> None:
    a, b = tmp_path / "a" / "in.h5", tmp_path / "b" / "in.h5"
    for path in (a, b):
        write_showers(path, np.ones((25, 6), np.float32), np.full(25, 1e4, np.float32))
    units_a, units_b = row_units("calib", ".parquet", [(a, 25)], 10), row_units("calib", ".parquet", [(b, 25)], 10)
    assert [u.key for u in units_a] == [u.key for u in units_b]
    assert [u.name for u in units_a] == [f"calib-0000-in-{lo:09d}-{hi:09d}.parquet" for lo, hi in
                                         ((0, 10), (10, 20), (20, 25))]
    assert [u.rows for u in units_a] == [10, 10, 5] and units_a[0].source == str(a)
    seeds = {unit_seed(3, u.key["input_sha256"], u.key["start"]) for u in units_a}
    assert len(seeds) == 3 and unit_seed(3, "x", 0) != unit_seed(4, "x", 0)
    assert all(0 <= s < 2**63 for s in seeds)
    with pytest.raises(ConfigError, match="rows_per_unit"):
        row_units("calib", ".parquet", [(a, 25)], 0)


def test_a_unit_error_reaches_the_caller_as_its_own_one_line_error(ray_local, tmp_path) -> None:
    from caloray.errors import ShowerFileError
    from caloray.pipelines.shards import UnitWorker, run_units

    class Failing(UnitWorker):  # defined here so Ray pickles it by value
        def compute(self, unit: Unit) -> None:
            raise ShowerFileError(f"in.h5: 'showers' row {unit.key['start'] + 3} holds a non-finite value")

    units = [Unit(0, "out-0.h5", 10, {"start": 0, "stop": 10})]
    with pytest.raises(ShowerFileError, match=r"^in.h5: 'showers' row 3 holds a non-finite value$"):
        run_units(tmp_path / "out", {"workflow": "test"}, units, Failing(), actors=1)
    assert not list((tmp_path / "out").glob("*.h5")) and not list((tmp_path / "out").glob(".*tmp*"))
