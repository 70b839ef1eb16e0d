"""`caloray.provenance.atomic_write`: the one temp-then-rename helper every writer uses."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from caloray.io import read_shower_file, write_showers
from caloray.provenance import atomic_write, write_json_atomic


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write(target, lambda tmp: tmp.write_text("first"))
    assert target.read_text() == "first"

    def half(tmp):
        tmp.write_text("half of the sec")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_temporary_name_sits_next_to_the_target_and_matches_the_leftover_pattern(tmp_path):
    seen = []
    atomic_write(tmp_path / "shard-00001.h5", lambda tmp: seen.append(tmp) or tmp.write_bytes(b"x"))
    assert seen[0].parent == tmp_path and seen[0].match(".shard-00001.h5.tmp*")
    assert not seen[0].exists()


def test_files_get_umask_permissions_not_private_ones(tmp_path):
    mask = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "a.json", {"b": 1, "a": [1.5]})
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text()) == {"a": [1.5], "b": 1}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')  # keys sorted


def test_write_showers_failure_leaves_nothing(tmp_path):
    path = tmp_path / "showers.h5"
    with pytest.raises(TypeError):
        write_showers(path, np.ones((2, 3)), np.ones(2), extra={"bad": np.array([object(), object()])})
    assert list(tmp_path.iterdir()) == []
    write_showers(path, np.ones((2, 3)), np.array([1.0, 2.0]))
    rows = read_shower_file(path)
    assert rows["showers"].shape == (2, 3) and np.array_equal(rows["incident_energies"].ravel(), [1.0, 2.0])
