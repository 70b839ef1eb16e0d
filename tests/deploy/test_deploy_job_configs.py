"""Every YAML in jobs/configs loads into the Config of the workflow its name starts with."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_testlib import JOBS

from caloray.config import load_yaml
from caloray.errors import ConfigError
from caloray.train import load_train_config
from caloray.workflows import build_config, workflow

CONFIGS = sorted((JOBS / "configs").glob("*.yaml"))


def _expected(path: Path) -> type:
    """Which workflow Config a config file is for, by its name prefix."""
    return workflow(path.name.split("-", 1)[0]).Config


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_into_its_dataclass(path: Path) -> None:
    cls = _expected(path)
    config = build_config(path.name.split("-", 1)[0], path)
    assert type(config) is cls


def test_simulate_configs_are_what_they_say() -> None:
    ds2 = build_config("simulate", JOBS / "configs" / "simulate-ds2-electrons.yaml")
    assert (ds2.geometry, ds2.resolved_particle, ds2.prior) == ("ds2", "electron", "log-uniform")
    assert ds2.n_showers == 100_000
    pions = build_config("simulate", JOBS / "configs" / "simulate-ecal-hcal-pions.yaml")
    sets = {d.name: d.sim for d in pions.datasets}
    assert {s.prior for s in sets.values()} == {"uniform", "log-uniform", "fixed"}
    assert all(s.geometry == "ecal-hcal" and s.resolved_particle == "pion" for s in sets.values())
    assert sets["eval-fixed"].energies_mev == tuple(1e3 * e for e in range(10, 100, 10))
    assert len({s.seed for s in sets.values()}) == len(sets), "datasets must not share seeds"


def test_production_config_chains_existing_configs() -> None:
    path = JOBS / "configs" / "production-ecal-hcal.yaml"
    config = load_yaml(workflow("production").Config, path)
    names = {d.name for d in build_config("simulate", path.parent / config.simulate).datasets}
    assert set(config.train_datasets) <= names
    load_train_config(path.parent / config.train)


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "simulate-bad.yaml"
    bad.write_text("datasets:\n  - name: a\n    sim: {geometry: ds2, n_shower: 10}\n")
    with pytest.raises(ConfigError, match="n_showers"):
        build_config("simulate", bad)
    bad.write_text("datasets:\n  - {name: a}\n  - {name: a}\n")
    with pytest.raises(ConfigError, match="unique"):
        build_config("simulate", bad)


def test_pipeline_configs_are_consistent() -> None:
    """Both pipeline configs load; the demo/production follow-up configs name what the pipelines register."""
    demo = build_config("pipeline", JOBS / "configs" / "pipeline-demo.yaml")
    production = build_config("pipeline", JOBS / "configs" / "pipeline-production.yaml")
    assert demo.data.train.n_showers <= 1000 and demo.generate.n_showers <= 1000, "the demo must stay tiny"
    for config in (demo, production):
        assert config.data.superres is not None and config.data.superres.geometry == "ds2"
        assert config.data.reference.seed != config.data.train.seed, "the reference sample must be held out"
    calibrate = build_config("calibrate", JOBS / "configs" / "calibrate-demo.yaml")
    superres = build_config("superres", JOBS / "configs" / "superres-demo.yaml")
    assert calibrate.model == demo.train.flow1.tracking.registry_name
    assert superres.model == demo.train.superres.tracking.registry_name
    calibrate = build_config("calibrate", JOBS / "configs" / "calibrate-production.yaml")
    assert calibrate.model == load_train_config(JOBS / "configs" / "train-flow1-ecal-hcal.yaml").tracking.registry_name


def test_pipeline_rejects_inconsistent_configs(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load((JOBS / "configs" / "pipeline-demo.yaml").read_text())
    data["train"]["generator"]["model"]["kind"] = "energy-regressor"
    bad = tmp_path / "pipeline-bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="generator"):
        build_config("pipeline", bad)
    data = yaml.safe_load((JOBS / "configs" / "pipeline-demo.yaml").read_text())
    data["train"]["flow1"]["tracking"]["registry_name"] = None
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="registry_name"):
        build_config("pipeline", bad)
