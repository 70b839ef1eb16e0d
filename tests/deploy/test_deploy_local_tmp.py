"""deploy/local's temp folders: made with `mktemp -d` (fresh, 0700), recorded in the state folder, reused only
while still ours; an existing folder at a chosen path or a symlinked record is refused."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from deploy_testlib import DEPLOY

COMMON = DEPLOY / "local" / "common.sh"


def _make_ray_tmp(state: Path, tmpdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Source common.sh for `state` and run make_ray_tmp in a fresh shell; stdout is the folder it settled on."""
    script = f'set -euo pipefail; source "{COMMON}"; mkdir -p "$STATE"; make_ray_tmp; printf %s "$RAY_TMP"'
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALORAY_")}
    environ |= {"CALORAY_CLUSTER_STATE": str(state), "TMPDIR": str(tmpdir), **env}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=environ, timeout=60)


def test_fresh_private_folder_then_reused(tmp_path: Path) -> None:
    state, tmpdir = tmp_path / "state", tmp_path / "t"
    tmpdir.mkdir()
    first = _make_ray_tmp(state, tmpdir)
    assert first.returncode == 0, first.stderr
    folder = Path(first.stdout)
    assert folder.parent == tmpdir and folder.name.startswith("caloray-ray-") and len(folder.name) == 20
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert (state / "raytmp").read_text().strip() == str(folder)
    again = _make_ray_tmp(state, tmpdir)
    assert again.returncode == 0 and Path(again.stdout) == folder, "a restart keeps its recorded folder"
    other = _make_ray_tmp(tmp_path / "state2", tmpdir)
    assert Path(other.stdout) not in (folder, Path()) and Path(other.stdout).parent == tmpdir
    folder.rmdir()
    gone = _make_ray_tmp(state, tmpdir)
    assert gone.returncode == 0 and Path(gone.stdout) != folder, "a vanished folder is replaced by a new one"


def test_existing_chosen_folder_is_refused(tmp_path: Path) -> None:
    chosen = tmp_path / "already-there"
    chosen.mkdir()
    result = _make_ray_tmp(tmp_path / "state", tmp_path, CALORAY_RAY_TMPDIR=str(chosen))
    assert result.returncode != 0 and "refusing" in result.stderr
    assert not (tmp_path / "state" / "raytmp").exists()
    new = tmp_path / "new-folder"
    made = _make_ray_tmp(tmp_path / "state", tmp_path, CALORAY_RAY_TMPDIR=str(new))
    assert made.returncode == 0 and Path(made.stdout) == new and stat.S_IMODE(new.stat().st_mode) == 0o700


def test_symlinked_record_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = _make_ray_tmp(state, tmp_path)
    folder = Path(first.stdout)
    folder.rmdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    folder.symlink_to(target)
    result = _make_ray_tmp(state, tmp_path)
    assert result.returncode != 0 and "refusing" in result.stderr
