"""Every YAML in jobs/configs loads into the dataclass its job script reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_testlib import JOBS, load_job_module

from caloray.config import load_yaml
from caloray.errors import ConfigError
from caloray.pipelines.validate import ValidationConfig
from caloray.sim import SimConfig
from caloray.train import TrainConfig, load_train_config

CONFIGS = sorted((JOBS / "configs").glob("*.yaml"))


def _expected(path: Path) -> type:
    """Which dataclass a config file is for, by its name prefix."""
    simulate = load_job_module("simulate")
    production = load_job_module("production")
    prefix = path.name.split("-", 1)[0]
    if prefix == "generate":
        from caloray.generate import GenerationConfig

        return GenerationConfig
    return {
        "simulate": simulate.SimulateJob if "datasets" in path.read_text() else SimConfig,
        "train": TrainConfig,
        "production": production.ProductionConfig,
        "calibrate": load_job_module("calibrate").CalibrateJob,
        "validate": ValidationConfig,
        "superres": load_job_module("superres").SuperresJob,
        "pipeline": load_job_module("pipeline").PipelineConfig,
    }[prefix]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_into_its_dataclass(path: Path) -> None:
    cls = _expected(path)
    if cls in (SimConfig, load_job_module("simulate").SimulateJob):
        config = load_job_module("simulate").load_job(path)
    elif cls is TrainConfig:
        config = load_train_config(path)
    else:
        config = load_yaml(cls, path)
    assert type(config) is cls


def test_simulate_configs_are_what_they_say() -> None:
    simulate = load_job_module("simulate")
    ds2 = simulate.load_job(JOBS / "configs" / "simulate-ds2-electrons.yaml")
    assert (ds2.geometry, ds2.resolved_particle, ds2.prior) == ("ds2", "electron", "log-uniform")
    assert ds2.n_showers == 100_000
    pions = simulate.load_job(JOBS / "configs" / "simulate-ecal-hcal-pions.yaml")
    sets = {d.name: d.sim for d in pions.datasets}
    assert {s.prior for s in sets.values()} == {"uniform", "log-uniform", "fixed"}
    assert all(s.geometry == "ecal-hcal" and s.resolved_particle == "pion" for s in sets.values())
    assert sets["eval-fixed"].energies_mev == tuple(1e3 * e for e in range(10, 100, 10))
    assert len({s.seed for s in sets.values()}) == len(sets), "datasets must not share seeds"


def test_production_config_chains_existing_configs() -> None:
    production = load_job_module("production")
    simulate = load_job_module("simulate")
    path = JOBS / "configs" / "production-ecal-hcal.yaml"
    config = load_yaml(production.ProductionConfig, path)
    names = {d.name for d in simulate.load_job(path.parent / config.simulate).datasets}
    assert set(config.train_datasets) <= names
    load_train_config(path.parent / config.train)


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "simulate-bad.yaml"
    bad.write_text("datasets:\n  - name: a\n    sim: {geometry: ds2, n_shower: 10}\n")
    with pytest.raises(ConfigError, match="n_showers"):
        load_job_module("simulate").load_job(bad)
    bad.write_text("datasets:\n  - {name: a}\n  - {name: a}\n")
    with pytest.raises(ConfigError, match="unique"):
        load_job_module("simulate").load_job(bad)


def test_pipeline_configs_are_consistent() -> None:
    """Both pipeline configs load; the demo/production follow-up configs name what the pipelines register."""
    pipeline = load_job_module("pipeline")
    demo = pipeline.load_config(JOBS / "configs" / "pipeline-demo.yaml")
    production = pipeline.load_config(JOBS / "configs" / "pipeline-production.yaml")
    assert demo.data.train.n_showers <= 1000 and demo.generate.n_showers <= 1000, "the demo must stay tiny"
    for config in (demo, production):
        assert config.data.superres is not None and config.data.superres.geometry == "ds2"
        assert config.data.reference.seed != config.data.train.seed, "the reference sample must be held out"
    calibrate = load_yaml(load_job_module("calibrate").CalibrateJob, JOBS / "configs" / "calibrate-demo.yaml")
    superres = load_yaml(load_job_module("superres").SuperresJob, JOBS / "configs" / "superres-demo.yaml")
    assert calibrate.model == demo.train.flow1.tracking.registry_name
    assert superres.model == demo.train.superres.tracking.registry_name
    calibrate = load_yaml(load_job_module("calibrate").CalibrateJob, JOBS / "configs" / "calibrate-production.yaml")
    assert calibrate.model == load_train_config(JOBS / "configs" / "train-flow1-ecal-hcal.yaml").tracking.registry_name


def test_pipeline_rejects_inconsistent_configs(tmp_path: Path) -> None:
    import yaml

    pipeline = load_job_module("pipeline")
    data = yaml.safe_load((JOBS / "configs" / "pipeline-demo.yaml").read_text())
    data["train"]["generator"]["model"]["kind"] = "energy-regressor"
    bad = tmp_path / "pipeline-bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="generator"):
        pipeline.load_config(bad)
    data = yaml.safe_load((JOBS / "configs" / "pipeline-demo.yaml").read_text())
    data["train"]["flow1"]["tracking"]["registry_name"] = None
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="registry_name"):
        pipeline.load_config(bad)
