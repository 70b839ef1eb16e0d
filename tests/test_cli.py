"""The `caloray` command line: help for every subcommand, real runs on small inputs, clear errors."""

import h5py
import numpy as np
import pytest

from caloray.cli import build_parser, main


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"demo", "simulate", "features", "geometry", "inspect", "train", "calibrate", "score"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert "usage: caloray" in capsys.readouterr().out


def test_geometry_listing_and_xml_export(tmp_path, capsys):
    assert main(["geometry"]) == 0
    assert "ds2: cylindrical" in capsys.readouterr().out
    assert main(["geometry", "ds1-photons", "--xml", str(tmp_path / "g.xml")]) == 0
    assert main(["geometry", str(tmp_path / "g.xml")]) == 0
    assert "368 voxels" in capsys.readouterr().out


def test_simulate_inspect_and_features(ray_local, tmp_path, capsys):
    out = tmp_path / "sim"
    code = main(["simulate", "--geometry", "ecal-hcal", "--particle", "pion", "--n", "300",
                 "--energies", "uniform:10GeV-20GeV", "--shard-size", "200", "--seed", "5", "--out", str(out)])
    assert code == 0
    files = sorted(out.glob("*.h5"))
    assert len(files) == 2
    with h5py.File(files[0]) as f:
        assert f.attrs["generator"] == "caloray.sim" and f.attrs["geometry"] == "ecal-hcal"
        energies = f["incident_energies"][:]
        assert energies.min() >= 10_000 and energies.max() <= 20_000
    assert main(["inspect", str(out), "--geometry", "ecal-hcal", "--check-values"]) == 0
    assert "1008 voxels" in capsys.readouterr().out
    assert main(["features", "--input", str(out), "--geometry", "ecal-hcal", "--out", str(tmp_path / "f")]) == 0
    assert list((tmp_path / "f").glob("features-*.parquet"))


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["geometry", "ds9"]) == 2
    assert "unknown geometry 'ds9'" in capsys.readouterr().err
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["showers"] = np.ones((2, 5))
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "incident_energies" in err
    assert main(["simulate", "--geometry", "ds2", "--prior", "flat", "--n", "1", "--out", str(tmp_path)]) == 2
    assert "prior" in capsys.readouterr().err
