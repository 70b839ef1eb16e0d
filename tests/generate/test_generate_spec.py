"""Energy specs, `GenerationConfig` checks and the `caloray generate` command line (no Ray)."""

from __future__ import annotations

import numpy as np
import pytest

from caloray.cli import build_parser, command_config
from caloray.errors import ConfigError
from caloray.generate import EnergySpec, GenerationConfig, parse_energy_spec


@pytest.mark.parametrize(("text", "expected"), [
    ("log-uniform:1000-100000", EnergySpec("log-uniform", 1e3, 1e5)),
    ("log-uniform:1GeV-100GeV", EnergySpec("log-uniform", 1e3, 1e5)),
    ("uniform: 1e3 - 1e5", EnergySpec("uniform", 1e3, 1e5)),
    ("Uniform:500MeV-0.1TeV", EnergySpec("uniform", 500.0, 1e5)),
    ("fixed:10000,20000", EnergySpec("fixed", values_mev=(1e4, 2e4))),
    ("fixed:50GeV", EnergySpec("fixed", values_mev=(5e4,))),
])
def test_specs_parse_to_mev_and_round_trip(text: str, expected: EnergySpec) -> None:
    spec = parse_energy_spec(text)
    assert spec == expected
    assert parse_energy_spec(spec.text) == spec


@pytest.mark.parametrize(("text", "message"), [
    ("log-uniform", "expected"),
    ("loguniform:1-2", "did you mean 'log-uniform'"),
    ("gauss:1-2", "unknown prior"),
    ("uniform:100", "needs a range"),
    ("uniform:200-100", "need A < B"),
    ("uniform:0-100", "positive"),
    ("fixed:", "at least one energy"),
    ("fixed:10,abc", "not a number"),
    ("uniform:1PeV-2PeV", "unknown unit"),
])
def test_bad_specs_are_clear_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_energy_spec(text)


def test_spec_sampling_ranges_and_fixed_cycle() -> None:
    rng = np.random.default_rng(0)
    for kind in ("uniform", "log-uniform"):
        values = EnergySpec(kind, 1e3, 1e5).sample(rng, 10_000)
        assert values.min() >= 1e3 and values.max() <= 1e5
    log_values = np.log10(EnergySpec("log-uniform", 1e3, 1e5).sample(rng, 20_000))
    assert abs(np.mean(log_values < 4.0) - 0.5) < 0.02  # log-uniform: half the mass below 10 GeV
    fixed = EnergySpec("fixed", values_mev=(1.0, 2.0, 3.0))
    assert fixed.sample(rng, 4, start=2).tolist() == [3.0, 1.0, 2.0, 3.0]  # by global index


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": ""}, "model is required"),
    ({"n_showers": 0}, "n_showers"),
    ({"shard_size": 0}, "shard_size"),
    ({"energies": "uniform:5-1"}, "A < B"),
    ({"validate_n": 1}, "validate_n"),
    ({"validate_features": ["energy"]}, "validate_features"),
    ({"validate_statistics": ["llr"]}, "validate_statistics"),
    ({"validate_n_iter": 100}, "validate_n_iter ≥ 400"),  # 4 tests at alpha 0.01 need p down to 0.0025
])
def test_config_checks(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GenerationConfig(**{"model": "m.pt", **kwargs})


def test_validation_settings_are_not_checked_when_validation_is_off() -> None:
    GenerationConfig(model="m.pt", validate_n=0, validate_n_iter=10, validate_features=["energy"])


def test_cli_flags_override_yaml(tmp_path) -> None:
    path = tmp_path / "gen.yaml"
    path.write_text("model: flows:3\nn_showers: 1000\nseed: 4\nenergies: uniform:1000-2000\nvalidate_n: 0\n")
    args = build_parser().parse_args(["generate", "--config", str(path), "--n", "50", "--shard-size", "20",
                                      "--out", str(tmp_path / "out"), "--no-gpu"])
    config = command_config(args)
    assert (config.model, config.n_showers, config.seed, config.shard_size) == ("flows:3", 50, 4, 20)
    assert config.use_gpu is False and config.energies == "uniform:1000-2000"
    path.write_text("model: m.pt\nn_shower: 3\n")
    with pytest.raises(ConfigError, match="did you mean 'n_showers'"):
        command_config(build_parser().parse_args(["generate", "--config", str(path)]))


def test_help_documents_the_command(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--help"])
    text = capsys.readouterr().out
    for word in ("--model", "--energies", "--validate-n", "--reference", "resumes", "manifest.json", "FAILED"):
        assert word in text
