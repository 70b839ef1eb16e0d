"""Checkpoints: bit-for-bit round trips, weights_only loading, kind checks, the registry."""

from __future__ import annotations

import json

import pytest
import torch

from caloray.errors import ConfigError
from caloray.models import (
    MODEL_KINDS,
    CheckpointError,
    Ensemble,
    build,
    load_model,
    read_checkpoint,
    save_model,
)
from caloray.models import serialization as serialization_module

SMALL_CONFIGS = {
    "layer-energy-flow": {"transforms": 2, "hidden_features": [16, 16]},
    "voxel-flow": {"transforms": 2, "hidden_features": [16]},
    "shower-vae": {"hidden_features": [32], "latent_dim": 4},
    "energy-regressor": {"hidden_features": [16, 16]},
    "shower-inn": {"blocks": 2, "hidden_features": [16]},
    "bayesian-shower-inn": {"blocks": 2, "hidden_features": [16], "train_size": 100, "marginals": "gaussianize"},
    "voxel-flow-student": {"hidden_features": [16]},
}


def small_model(kind: str, voxel_layer: list[int]):
    torch.manual_seed(0)
    if kind == "voxel-flow-student":
        teacher = {"voxel_layer": voxel_layer, **SMALL_CONFIGS["voxel-flow"]}
        return build(kind, {"teacher_config": teacher, "voxel_layer": voxel_layer, **SMALL_CONFIGS[kind]})
    return build(kind, {"voxel_layer": voxel_layer, **SMALL_CONFIGS[kind]})


def deterministic_output(model, batch) -> torch.Tensor:
    """A deterministic function of the weights for every kind."""
    if model.kind == "energy-regressor" or getattr(model, "member_kind", None) == "energy-regressor":
        return model.predict(batch)
    if model.kind == "shower-vae":
        return model.reconstruct(batch)
    if model.kind == "bayesian-shower-inn":
        return model.log_prob(batch, weight_draw_seed=0)
    return model.log_prob(batch)


def test_registry_lists_every_kind():
    assert set(MODEL_KINDS) == {"layer-energy-flow", "voxel-flow", "shower-vae", "energy-regressor", "superres-flow",
                                "ensemble", "shower-inn", "bayesian-shower-inn", "voxel-flow-student"}
    assert all(cls.kind == kind for kind, cls in MODEL_KINDS.items())
    with pytest.raises(ConfigError, match="unknown model kind"):
        build("gan", {})
    with pytest.raises(ConfigError, match="bad config"):
        build("layer-energy-flow", {"voxel_layer": [0], "layers": 3})


@pytest.mark.parametrize("kind", sorted(SMALL_CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_is_bit_for_bit(kind, dtype, tmp_path, toy_batch, toy_voxel_layer):
    model = small_model(kind, toy_voxel_layer).to(dtype)
    batch = {key: value.to(dtype) for key, value in toy_batch.items()}
    if kind in ("shower-vae", "shower-inn", "bayesian-shower-inn"):
        model.fit_standardization(batch["showers"], batch["incident_energies"])
    path = save_model(model, tmp_path / f"{kind}.pt")
    loaded = load_model(path, expected_kind=kind)
    assert type(loaded) is type(model) and loaded.config() == model.config()
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b), name
    assert torch.equal(deterministic_output(model, batch), deterministic_output(loaded, batch))


def test_ensemble_round_trip_in_one_file(tmp_path, toy_batch, toy_voxel_layer):
    ensemble = Ensemble.from_members([small_model("layer-energy-flow", toy_voxel_layer) for _ in range(3)])
    with torch.no_grad():  # make the members differ
        for k, member in enumerate(ensemble.members):
            for parameter in member.parameters():
                parameter.add_(0.01 * k)
    path = save_model(ensemble, tmp_path / "ensemble.pt")
    payload = read_checkpoint(path)
    assert payload["kind"] == "ensemble" and len(payload["config"]["member_configs"]) == 3
    loaded = load_model(path, expected_kind="layer-energy-flow", allow_ensemble=True)
    assert isinstance(loaded, Ensemble) and len(loaded) == 3
    assert torch.equal(loaded.log_prob(toy_batch), ensemble.log_prob(toy_batch))
    with pytest.raises(CheckpointError, match="expected kind 'layer-energy-flow'"):
        load_model(path, expected_kind="layer-energy-flow")


def test_files_are_plain_data_loadable_with_weights_only(tmp_path, toy_voxel_layer, monkeypatch):
    model = small_model("layer-energy-flow", toy_voxel_layer)
    path = save_model(model, tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)  # no custom classes inside
    assert set(payload) == {"format", "version", "kind", "config", "state_dict"}
    assert payload["config"] == json.loads(json.dumps(model.config()))

    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(serialization_module.torch, "load", spy)
    load_model(path)
    assert calls == [True]


def test_wrong_kind_names_file_and_both_kinds(tmp_path, toy_voxel_layer):
    path = save_model(small_model("energy-regressor", toy_voxel_layer), tmp_path / "regressor.pt")
    with pytest.raises(CheckpointError) as excinfo:
        load_model(path, expected_kind="layer-energy-flow")
    message = str(excinfo.value)
    assert str(path) in message and "'energy-regressor'" in message and "'layer-energy-flow'" in message


def test_pickled_objects_are_refused(tmp_path, toy_voxel_layer):
    path = tmp_path / "pickled.pt"
    torch.save({"kind": "layer-energy-flow", "model": small_model("layer-energy-flow", toy_voxel_layer)}, path)
    with pytest.raises(CheckpointError, match="not a loadable caloray checkpoint"):
        load_model(path)


def test_malformed_and_missing_files(tmp_path, toy_voxel_layer):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a caloray model checkpoint"):
        load_model(tmp_path / "other.pt")
    model = small_model("layer-energy-flow", toy_voxel_layer)
    state = model.state_dict()
    config = {**model.config(), "hidden_features": [8, 8]}
    torch.save({"kind": model.kind, "config": config, "state_dict": state}, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(tmp_path / "mismatch.pt")


def test_reads_files_without_format_keys(tmp_path, toy_batch, toy_voxel_layer):
    """Plain {"kind", "config", "state_dict"} files (as written by caloray.train) load too."""
    model = small_model("layer-energy-flow", toy_voxel_layer)
    path = tmp_path / "plain.pt"
    torch.save({"kind": model.kind, "config": model.config(), "state_dict": model.state_dict()}, path)
    assert torch.equal(load_model(path).log_prob(toy_batch), model.log_prob(toy_batch))
