"""Every command that reads showers, given a NaN shower, a wrong voxel count, a truncated HDF5 file or a missing
file: exit status 2, exactly one line on stderr naming the file, and no output folder left behind.

Structure problems are caught before Ray starts (`caloray.io.checks`); a NaN is found by the Ray workers (the
commands read values there unless --check-values), so those cases prove that an error raised in a Ray task or
actor reaches the user as the same one line. `inspect` and `generate` check values before Ray, with --check-values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from caloray.cli import main
from caloray.geometry import get_geometry
from caloray.io import expand_paths, inspect_shower_file, write_showers
from caloray.models import LayerEnergyFlow, save_model
from caloray.superres import SuperResolutionFlow

#: geometry of each command's inputs (superres reads ds2, the others the small ecal-hcal).
DS2 = ("superres",)
CASES = ("nan", "voxels", "truncated", "missing")


def _showers(rng: np.random.Generator, n: int, voxels: int) -> np.ndarray:
    return (rng.exponential(5.0, (n, voxels)) * (rng.random((n, voxels)) < 0.3)).astype(np.float32)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """Good and bad input files of both geometries, a tiny calibration flow and a tiny super-resolution flow."""
    root = tmp_path_factory.mktemp("bad-input")
    rng = np.random.default_rng(3)
    files: dict[str, Path] = {}
    for geometry, prefix in (("ecal-hcal", ""), ("ds2", "ds2-")):
        voxels = get_geometry(geometry).n_voxels
        showers, energies = _showers(rng, 40, voxels), rng.uniform(5e3, 5e4, 40)
        files[prefix + "good"] = write_showers(root / f"{prefix}good.h5", showers, energies, geometry=geometry)
        showers[17, 4] = np.nan  # a row the workers read; only --check-values finds it before Ray
        files[prefix + "nan"] = write_showers(root / f"{prefix}nan.h5", showers, energies, geometry=geometry)
        files[prefix + "voxels"] = write_showers(root / f"{prefix}voxels.h5", _showers(rng, 5, 100), energies[:5])
        data = files[prefix + "good"].read_bytes()
        (root / f"{prefix}truncated.h5").write_bytes(data[: len(data) // 2])
        files[prefix + "truncated"] = root / f"{prefix}truncated.h5"
        files[prefix + "missing"] = root / f"{prefix}missing.h5"
    torch.manual_seed(0)
    files["flow"] = save_model(LayerEnergyFlow(get_geometry("ecal-hcal").voxel_layer.tolist(), transforms=1,
                                               hidden_features=(8,)), root / "flow.pt")
    files["superres"] = save_model(SuperResolutionFlow.for_geometry("ds2", "A", oracle=False, transforms=1,
                                                                    hidden_features=(8,)), root / "sr.pt")
    return files


def _argv(command: str, bad: Path, world: dict[str, Path], out: Path) -> list[str]:
    good, model = str(world["good"]), str(world["flow"])
    calibration = ["--model", model, "--energy-range", "1GeV-100GeV", "--out", str(out)]
    return {
        "calibrate": ["calibrate", *calibration, "--input", str(bad)],
        "score": ["score", *calibration, "--input", good, "--signal", str(bad)],
        "superres": ["superres", "--model", str(world["superres"]), "--input", str(bad), "--out", str(out),
                     "--batch-size", "64"],
        "validate": ["validate", "--reference", good, "--candidate", str(bad), "--geometry", "ecal-hcal",
                     "--features", "total-energy", "--stats", "mean-ks", "--batch-size", "10", "--n-iter", "5",
                     "--out", str(out)],
        "features": ["features", "--input", str(bad), "--geometry", "ecal-hcal", "--out", str(out)],
        "inspect": ["inspect", str(bad), "--geometry", "ecal-hcal", "--check-values"],
        "generate": ["generate", "--model", model, "--reference", str(bad), "--geometry", "ecal-hcal",
                     "--check-values", "--out", str(out)],
    }[command]


def _assert_one_line_exit_2(code: int, err: str, bad: Path, out: Path) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and str(bad) in lines[0] and lines[0].startswith("caloray "), err
    assert not out.exists(), sorted(p.name for p in out.iterdir())  # no folder, so no partial file in it


#: Commands whose NaN case runs on Ray (actors start: several seconds each on a 2-core machine).
RAY_PATH = ("calibrate", "score", "superres", "validate", "features")


@pytest.mark.parametrize(("command", "case"), [
    pytest.param(command, case, marks=[pytest.mark.slow] if case == "nan" and command in RAY_PATH else [])
    for command in (*RAY_PATH, "inspect", "generate") for case in CASES
])
def test_bad_input_is_one_line_and_exit_2(request, world, tmp_path, capsys, command, case):
    if case == "nan" and command in RAY_PATH:
        request.getfixturevalue("ray_local")  # the others fail before Ray starts
        capsys.readouterr()  # what Ray printed when it started here is not the command's
    bad = world[("ds2-" if command in DS2 else "") + case]
    out = tmp_path / "out"
    code = main(_argv(command, bad, world, out))
    _assert_one_line_exit_2(code, capsys.readouterr().err, bad, out)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["calibrate", "superres"])
def test_errors_raised_in_ray_actors_without_preflight(ray_local, world, tmp_path, capsys, monkeypatch, command):
    """With the pre-flight check switched off, the wrong-voxel file reaches the actors, which raise; and a NaN
    row is only ever seen by them: both come back as one line naming the file, exit 2, no folder."""
    import caloray.io.checks

    def structure_only(inputs, **_):  # the pre-flight without its voxel-count and value checks
        return [inspect_shower_file(path) for path in expand_paths(inputs)]

    monkeypatch.setattr(caloray.io.checks, "check_shower_inputs", structure_only)
    prefix = "ds2-" if command in DS2 else ""
    for case in ("voxels", "nan"):
        bad, out = world[prefix + case], tmp_path / case
        code = main(_argv(command, bad, world, out))
        _assert_one_line_exit_2(code, capsys.readouterr().err, bad, out)


def test_check_values_finds_the_nan_before_ray(world, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([*_argv("features", world["nan"], world, out), "--check-values"])
    err = capsys.readouterr().err
    _assert_one_line_exit_2(code, err, world["nan"], out)
    assert "'showers' row 17 holds a non-finite value" in err


def test_a_failed_run_keeps_a_folder_that_existed(world, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.txt").write_text("kept")  # e.g. a run being resumed: not this run's to remove
    assert main(_argv("features", world["truncated"], world, out)) == 2
    assert [p.name for p in out.iterdir()] == ["earlier.txt"]
