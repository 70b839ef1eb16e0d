"""The workflow registry: one Config per workflow, reachable the same way from the CLI and `jobs/run.py`."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from caloray.cli import main
from caloray.errors import ConfigError
from caloray.workflows import WORKFLOWS, build_config, parse_sets, workflow

REPO = Path(__file__).resolve().parents[2]
TINY = {"geometry": "ds1-photons", "prior": "uniform", "energy_min_mev": 1000.0, "energy_max_mev": 20000.0,
        "n_showers": 40, "shard_size": 20, "seed": 3}


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_workflow_has_one_config_and_run(name: str) -> None:
    module = workflow(name)
    assert dataclasses.is_dataclass(module.Config) and callable(module.run)
    assert WORKFLOWS[name].out_field in {f.name for f in dataclasses.fields(module.Config)}


def test_sets_are_nested_yaml_values() -> None:
    assert parse_sets(["a=1", "b.c=[1, 2]", "b.d=null", "e=x"]) == {"a": 1, "b": {"c": [1, 2], "d": None}, "e": "x"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_sets(["novalue"])


def test_yaml_then_flags_then_sets(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(TINY))
    config = build_config("simulate", path, {"n_showers": 60, "seed": None}, ["seed=9", "physics.spots_per_gev=7"])
    assert (config.n_showers, config.seed, config.shard_size, config.physics.spots_per_gev) == (60, 9, 20, 7)
    with pytest.raises(ConfigError, match=r"--set|unknown key 'n_shower'"):
        build_config("simulate", path, sets=["n_shower=3"])
    with pytest.raises(ConfigError, match="expected an integer"):
        build_config("simulate", path, sets=["seed=abc"])


def test_pipeline_stages_embed_the_workflow_configs() -> None:
    """The pipeline's stage sections are the workflows' Configs; the keys the pipeline wires in are refused."""
    from caloray.workflows import calibrate, superres

    config = build_config("demo", None)
    assert isinstance(config.calibrate, calibrate.Config) and isinstance(config.superres, superres.Config)
    assert type(config.generate) is workflow("generate").Config and type(config.validate) is workflow("validate").Config
    demo_yaml = yaml.safe_load(WORKFLOWS["demo"].default_config.read_text())
    assert config.calibrate.rows_per_unit == demo_yaml["calibrate"]["rows_per_unit"]
    with pytest.raises(ConfigError, match=r"calibrate: model is set by the enclosing workflow"):
        build_config("demo", None, sets=["calibrate.model=other:1"])


def _showers(folder: Path) -> np.ndarray:
    return np.concatenate([h5py.File(p)["showers"][:] for p in sorted(folder.glob("showers-*.h5"))])


@pytest.mark.slow
def test_job_entrypoint_and_cli_run_the_same_workflow(ray_local, tmp_path: Path) -> None:
    """`python jobs/run.py simulate` (its own local Ray, a subprocess) and `caloray simulate` (flags in GeV) on the
    same settings write bit-identical showers; a bad key is one line on stderr and exit status 2."""
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump({**TINY, "n_showers": 10}))
    # The job connects to the session's cluster through RAY_ADDRESS, as a submitted Ray Job does.
    address = ray_local.get_runtime_context().gcs_address
    env = {**os.environ, "RAY_ADDRESS": address, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    job = [sys.executable, str(REPO / "jobs" / "run.py"), "simulate", "--config", str(path), "--out",
           str(tmp_path / "job"), "--set", "n_showers=40"]
    done = subprocess.run(job, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "job" / "job" / "provenance.json").is_file()
    assert main(["simulate", "--geometry", "ds1-photons", "--energies", "uniform:1GeV-20GeV", "--n", "40",
                 "--shard-size", "20", "--seed", "3",
                 "--out", str(tmp_path / "cli")]) == 0
    from_job, from_cli = _showers(tmp_path / "job"), _showers(tmp_path / "cli")
    assert from_job.shape == (40, 368) and np.array_equal(from_job, from_cli)

    bad = subprocess.run([*job[:-1], "n_shower=40"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "n_shower" in bad.stderr and str(path) in bad.stderr


def test_job_entrypoint_reports_bad_input_like_the_cli(tmp_path: Path, capsys) -> None:
    """jobs/run.py on a file of the wrong voxel count: one stderr line naming the file, exit status 2, and the output
    folder it would have created is not left behind (the checks run before Ray starts)."""
    import importlib.util

    from caloray.errors import ShowerFileError

    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["incident_energies"] = np.full((4, 1), 1e4)
        f["showers"] = np.ones((4, 100), dtype=np.float32)
    spec = importlib.util.spec_from_file_location("jobs_run", REPO / "jobs" / "run.py")
    jobs_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(jobs_run)
    config = tmp_path / "features.yaml"
    config.write_text(yaml.safe_dump({"inputs": [str(bad)], "geometry": "ds1-photons"}))
    out = tmp_path / "out"
    assert jobs_run.main(["features", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("jobs/run.py features: error:") and str(bad) in err
    assert not out.exists()

    def fails_inside(name, config, **_):  # as a Ray worker does after the run created its folder
        Path(config.out).mkdir(parents=True)
        (Path(config.out) / "part-0.parquet").write_bytes(b"half")
        raise ShowerFileError(f"{bad}: showers row 2: NaN energy")

    jobs_run.run_workflow = fails_inside
    config.write_text(yaml.safe_dump({"inputs": [str(tmp_path)], "geometry": "ds1-photons"}))
    assert jobs_run.main(["features", "--config", str(config), "--out", str(out)]) == 2
    assert "row 2: NaN energy" in capsys.readouterr().err and not out.exists()
