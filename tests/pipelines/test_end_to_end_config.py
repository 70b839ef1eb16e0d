"""The end-to-end pipeline's generator stage: which generator kinds it trains and how it chains them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from caloray.config import from_dict
from caloray.errors import ConfigError
from caloray.geometry import get_geometry
from caloray.train.build import default_model_builder, resolve_model_kwargs
from caloray.workflows import WORKFLOWS
from caloray.workflows.pipeline import GENERATOR_KINDS, PipelineConfig

SMALL_KWARGS = {
    "shower-inn": {"blocks": 1, "hidden_features": [8], "bins": 4},
    "bayesian-shower-inn": {"blocks": 1, "hidden_features": [8], "bins": 4, "train_size": 100},
    "voxel-flow": {"transforms": 1, "hidden_features": [8]},
    "shower-vae": {"latent_dim": 4, "hidden_features": [16]},
}


def _pipeline(kind: str, kwargs: dict) -> PipelineConfig:
    data = yaml.safe_load(WORKFLOWS["demo"].default_config.read_text())
    data["train"]["generator"]["model"] = {"kind": kind, "kwargs": kwargs}
    return from_dict(PipelineConfig, data, where=str(WORKFLOWS["demo"].default_config))


def test_generator_kinds_include_the_inns_and_exclude_the_student() -> None:
    assert {"shower-inn", "bayesian-shower-inn", "voxel-flow", "shower-vae"} <= set(GENERATOR_KINDS)
    with pytest.raises(ConfigError, match=r"train\.generator\.model\.kind must be one of"):
        _pipeline("voxel-flow-student", {"teacher_checkpoint": "x.pt"})


@pytest.mark.parametrize("kind", ["shower-inn", "bayesian-shower-inn"])
def test_pipeline_builds_and_samples_an_inn_generator(kind: str) -> None:
    config = _pipeline(kind, SMALL_KWARGS[kind])
    model = default_model_builder(kind, resolve_model_kwargs(config.train.generator))
    geometry = get_geometry(config.data.train.geometry)
    torch.manual_seed(0)
    showers = model.sample(torch.full((3,), 1_000.0))["showers"]
    assert showers.shape == (3, geometry.n_voxels) and bool(torch.isfinite(showers).all())


@pytest.mark.parametrize(("kind", "source", "chained"), [
    ("shower-inn", "generator", False), ("bayesian-shower-inn", "generator", False), ("voxel-flow", "generator", True),
    ("shower-vae", "generator", False), ("shower-vae", "flow1", True), ("shower-inn", "flow1", True)])
def test_generate_stage_chains_flow1_for_flow2_or_when_flow1_gives_the_layer_energies(
        kind: str, source: str, chained: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import caloray.workflows.generate as generate_workflow
    from caloray.workflows import Result
    from caloray.workflows.pipeline import stage_generate

    seen = {}

    def fake_generate(generation: object, progress: bool) -> Result:
        seen["layer_model"] = generation.layer_model
        return Result(out=tmp_path, paths={"shards": []}, detail=SimpleNamespace(mlflow_run_id="r"))

    monkeypatch.setattr(generate_workflow, "run", fake_generate)
    config = dataclasses.replace(_pipeline(kind, SMALL_KWARGS[kind]), layer_energies=source)
    _, info = stage_generate(config, "gen:1", "flow1:1", tmp_path, "file:" + str(tmp_path))
    assert seen["layer_model"] == ("flow1:1" if chained else None)
    assert info["generator"] == (f"layer-energy-flow → {kind}" if chained else kind)
    assert info["models"] == (["gen:1", "flow1:1"] if chained else ["gen:1"])


def test_layer_energy_source_is_checked() -> None:
    path = WORKFLOWS["demo"].default_config
    data = yaml.safe_load(path.read_text())
    with pytest.raises(ConfigError, match="layer_energies: expected one of 'generator', 'flow1'"):
        from_dict(PipelineConfig, {**data, "layer_energies": "flow2"}, where=str(path))
