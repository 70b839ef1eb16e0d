"""The shard-runner contract, the same for every sharded workflow (score runs through calibrate):

1. a driver SIGKILLed mid-run resumes to exactly the rows, without duplicates, bit-identical to an uninterrupted
   run into another folder;
2. a rerun with a changed setting is refused with one line naming it, and leaves the folder as it was;
3. a truncated shard is detected and recomputed (the others are reused untouched);
4. a second run into a busy folder is refused at once, naming the PID and host holding it.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from shard_contract_cases import CASES, build_inputs, read_rows

from caloray.errors import CalorayError
from caloray.pipelines.shards import JOURNAL_FILE, MANIFEST_FILE

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contract-inputs")
    build_inputs(root)
    return root


@pytest.fixture(scope="module")
def reference(ray_local, inputs, tmp_path_factory) -> dict[str, tuple[list[Path], dict[str, np.ndarray]]]:
    """An uninterrupted run of every workflow, into folders of their own."""
    out = {}
    for name, case in CASES.items():
        paths = case.run(inputs, tmp_path_factory.mktemp(f"reference-{name}") / "out")
        out[name] = paths, read_rows(paths)
    return out


def _assert_same(rows: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert rows.keys() == expected.keys()
    for key, values in expected.items():
        assert rows[key].shape == values.shape and rows[key].tobytes() == values.tobytes(), key


def _journal_lines(out: Path) -> int:
    return len((out / JOURNAL_FILE).read_text().splitlines()) if (out / JOURNAL_FILE).is_file() else 0


@pytest.mark.parametrize("name", list(CASES))
def test_killed_driver_resumes_bit_identically(ray_local, inputs, reference, tmp_path, name) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address, "PYTHONPATH": os.pathsep.join(
        [str(HERE), os.environ.get("PYTHONPATH", "")])}
    driver = subprocess.Popen([sys.executable, str(HERE / "shard_contract_cases.py"), name, str(inputs), str(out)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _journal_lines(out) < 1 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    driver.send_signal(signal.SIGSTOP)  # no further unit is submitted or journaled from here
    driver.send_signal(signal.SIGKILL)
    _, stderr = driver.communicate()
    assert driver.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    finished = _journal_lines(out)
    assert finished >= 1 and not (out / MANIFEST_FILE).exists()
    paths = CASES[name].run(inputs, out)
    expected_paths, expected = reference[name]
    assert [p.name for p in paths] == [p.name for p in expected_paths]
    assert len(paths) > finished  # the kill came before the end: the resume computed the rest
    rows = read_rows(paths)
    _assert_same(rows, expected)
    key = next(k for k in ("showers", "source_row", *expected) if k in expected)
    assert len(np.unique(rows[key].reshape(len(rows[key]), -1), axis=0)) == len(rows[key])  # no duplicated rows


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", list(CASES))
def test_changed_setting_is_refused_naming_it(inputs, reference, name) -> None:
    case = CASES[name]
    paths = reference[name][0]
    before = _snapshot(paths[0].parent)
    with pytest.raises(CalorayError, match=case.setting) as error:
        case.run(inputs, paths[0].parent, **case.changed)
    assert "\n" not in str(error.value)
    assert _snapshot(paths[0].parent) == before  # nothing rewritten, nothing mixed


@pytest.mark.parametrize("name", list(CASES))
def test_truncated_shard_is_recomputed(inputs, reference, name) -> None:
    case = CASES[name]
    paths, expected = reference[name]
    stamps = [p.stat().st_mtime_ns for p in paths]
    paths[1].write_bytes(paths[1].read_bytes()[:200])
    again = case.run(inputs, paths[0].parent)
    assert again == paths
    assert [p.stat().st_mtime_ns == s for p, s in zip(again, stamps, strict=True)] == \
        [i != 1 for i in range(len(paths))]
    _assert_same(read_rows(again), expected)


@pytest.mark.parametrize("name", list(CASES))
def test_busy_folder_is_refused_naming_the_holder(inputs, tmp_path, name) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from caloray.pipelines.shards import folder_lock\n"
         "with folder_lock(Path(sys.argv[1])):\n print('locked', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        (out / ".unit.h5.abc.tmp").write_bytes(b"a writer's temporary file")
        began = time.monotonic()
        with pytest.raises(CalorayError, match=f"in use by PID {holder.pid} on host {platform.node()}"):
            CASES[name].run(inputs, out)
        assert time.monotonic() - began < 30  # refused at once, not after waiting for the lock
        assert (out / ".unit.h5.abc.tmp").exists()  # the busy run's files are left alone
    finally:
        holder.kill()
        holder.wait()
