"""The consistent command line: --version, --tracking-uri where MLflow is touched, --config where a config is
taken, defaults in --help, energies with units, and a closed stdout pipe ending quietly."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import caloray
from caloray.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
MLFLOW_COMMANDS = ("demo", "train", "validate", "calibrate", "score", "export", "superres", "generate")
CONFIG_COMMANDS = ("demo", "simulate", "train", "calibration-study", "validate", "amplification", "superres-study",
                   "generate")


def _commands() -> dict:
    return build_parser()._subparsers._group_actions[0].choices


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip().startswith("caloray ")


@pytest.mark.parametrize("command", MLFLOW_COMMANDS)
def test_every_mlflow_command_takes_tracking_uri(command):
    options = {a.dest: a for a in _commands()[command]._actions}
    assert "--tracking-uri" in options["tracking_uri"].option_strings


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_every_config_command_takes_config(command):
    assert any("--config" in a.option_strings for a in _commands()[command]._actions)


def test_positional_config_is_the_same_as_config_flag(monkeypatch):
    import caloray.runtime
    import caloray.workflows.train
    from caloray.workflows import Result

    seen = []
    monkeypatch.setattr(caloray.runtime, "init_ray", lambda *a, **k: None)
    monkeypatch.setattr(caloray.workflows.train, "run",
                        lambda config, **kw: seen.append((config, kw)) or Result(out=Path(config.output_dir)))
    path = str(REPO / "caloray/configs/train-flow1-demo.yaml")
    assert main(["train", path, "--tracking-uri", "sqlite:///t.db"]) == 0
    assert main(["train", "--config", path]) == 0
    (first, first_kw), (second, second_kw) = seen
    assert first_kw == second_kw == {"resume": False}
    assert first.tracking.tracking_uri == "sqlite:///t.db" != second.tracking.tracking_uri
    assert dataclasses.replace(first, tracking=second.tracking) == second  # otherwise the same config
    assert main(["train"]) == 2  # no config at all: one line, exit 2


def test_tracking_uri_reaches_the_run(monkeypatch, tmp_path):
    """train: the TrainConfig's tracking.tracking_uri; validate: ValidationConfig.tracking_uri; demo: the
    PipelineConfig's."""
    import numpy as np

    import caloray.runtime
    import caloray.workflows.demo
    import caloray.workflows.train
    import caloray.workflows.validate
    from caloray.io import write_showers
    from caloray.workflows import Result

    uri = f"sqlite:///{tmp_path}/other.db"
    seen = {}
    monkeypatch.setattr(caloray.runtime, "init_ray", lambda *a, **k: None)
    monkeypatch.setattr(caloray.workflows.train, "train_ensemble",
                        lambda config, **_: seen.setdefault("train", config.tracking.tracking_uri) and 1 / 0)
    with pytest.raises(ZeroDivisionError):  # stops right after the config was handed over
        main(["train", str(REPO / "caloray/configs/train-flow1-demo.yaml"), "--tracking-uri", uri])
    monkeypatch.setattr(caloray.workflows.demo, "run",
                        lambda config, **_: seen.setdefault("demo", config.tracking_uri) and Result(out=tmp_path))
    assert main(["demo", "--tracking-uri", uri, "--out", str(tmp_path / "demo")]) == 0
    monkeypatch.setattr(caloray.workflows.validate, "run",
                        lambda config, **_: seen.setdefault("validate", config.tracking_uri) and Result(out=tmp_path))
    sample = write_showers(tmp_path / "s.h5", np.ones((3, 368), np.float32), np.full(3, 1e4), geometry="ds1-photons")
    assert main(["validate", "--reference", str(sample), "--candidate", str(sample), "--geometry", "ds1-photons",
                 "--tracking-uri", uri, "--out", str(tmp_path / "v")]) == 0
    assert seen == {"train": uri, "demo": uri, "validate": uri}


def test_help_shows_defaults(capsys):
    from caloray.cli import _DefaultsFormatter

    assert all(isinstance(p._get_formatter(), _DefaultsFormatter) for p in _commands().values())
    for command, default in (("calibrate", "showers per output shard (default: 4096)"),
                             ("export", "ONNX opset (default 18)"), ("score", "noise (default: 0)")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert default in " ".join(capsys.readouterr().out.split()), command


def test_energies_with_units_are_parsed_once(monkeypatch, tmp_path):
    """simulate --energies and calibrate --energy-range (and its older GeV spelling) give MeV values."""
    import argparse

    import caloray.runtime
    import caloray.workflows.simulate
    from caloray.cli import _energy_range

    configs = []
    monkeypatch.setattr(caloray.runtime, "init_ray", lambda *a, **k: None)
    monkeypatch.setattr(caloray.workflows.simulate, "simulate_to_files",
                        lambda config, out, **_: configs.append(config) or [])
    base = ["simulate", "--geometry", "ds2", "--n", "10", "--out", str(tmp_path)]
    assert main([*base, "--energies", "uniform:10GeV-20GeV"]) == 0
    assert main([*base, "--energies", "log-uniform:10000-0.02TeV"]) == 0
    assert main([*base, "--energies", "fixed:1GeV,500MeV"]) == 0
    assert [(c.prior, c.energy_min_mev, c.energy_max_mev) for c in configs[:2]] == [
        ("uniform", 10_000.0, 20_000.0), ("log-uniform", 10_000.0, 20_000.0)]
    assert (configs[2].prior, configs[2].energies_mev) == ("fixed", (1000.0, 500.0))
    new = _energy_range(argparse.Namespace(energy_range="1GeV-0.1TeV", energy_range_gev=None))
    old = _energy_range(argparse.Namespace(energy_range=None, energy_range_gev=[1.0, 100.0]))
    assert [(f["energy_min_mev"], f["energy_max_mev"]) for f in (new, old)] == [(1000.0, 100_000.0)] * 2
    assert main([*base, "--energies", "uniform:20GeV-10GeV"]) == 2


def test_geometry_into_a_closed_pipe_exits_quietly():
    """`caloray geometry ds2 | head`: the reader has gone before the output is written; no traceback."""
    env = {**os.environ, "PYTHONPATH": str(Path(caloray.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "caloray.cli", "geometry", "ds2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # as `head` does once it has its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""


@pytest.mark.parametrize(("command", "given", "field", "value"), [
    ("calibrate", {"rows_per_unit": 100, "seed": 5}, "rows_per_unit", 100),
    ("score", {"seed": 5}, "seed", 5),
    ("superres", {"choice": "B", "batch_size": 8, "seed": 3}, "choice", "B"),
])
def test_a_config_file_value_is_not_overridden_by_an_unset_flag(tmp_path, command, given, field, value):
    """A flag left unset keeps the --config file's value (an argparse default would silently replace it)."""
    import yaml

    from caloray.cli import command_config

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(given))
    required = ["--model", "m.pt", "--input", "in.h5", "--out", str(tmp_path / "out")]
    config = command_config(build_parser().parse_args([command, *required, "--config", str(path)]))
    assert getattr(config, field) == value
    assert all(getattr(config, key) == given[key] for key in given)
