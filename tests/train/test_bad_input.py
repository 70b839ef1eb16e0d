"""Bad input fails early with messages that say what is wrong: empty data, voxel mismatch, NaN loss."""

from __future__ import annotations

import numpy as np
import pytest

from caloray.config import from_dict
from caloray.errors import ConfigError
from caloray.train import NonFiniteLossError, TrainConfig, train_ensemble


def test_empty_dataset(make_dataset, flow_config):
    empty = make_dataset(8).limit(0)
    with pytest.raises(ConfigError, match="no showers to train on"):
        train_ensemble(from_dict(TrainConfig, flow_config()), empty)


def test_showers_do_not_match_geometry(make_dataset, flow_config):
    with pytest.raises(ConfigError, match="showers have 368 voxels but geometry 'ecal-hcal' has 1008"):
        train_ensemble(from_dict(TrainConfig, flow_config()), make_dataset(8, n_voxels=368))


def test_showers_do_not_match_model(make_dataset, flow_config):
    config = flow_config(
        data={"geometry": None},
        model={
            "kind": "layer-energy-flow",
            "kwargs": {"voxel_layer": [0] * 100 + [1] * 268, "transforms": 1, "hidden_features": [4]},
        },
    )
    with pytest.raises(
        ConfigError, match="showers have 1008 voxels but model 'layer-energy-flow' expects 368"
    ):
        train_ensemble(from_dict(TrainConfig, config), make_dataset(8))


def test_missing_columns(ray_local, flow_config):
    dataset = ray_local.data.from_items([{"showers": np.ones(1008, np.float32)}] * 4)
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \['incident_energies'\]"):
        train_ensemble(from_dict(TrainConfig, flow_config()), dataset)


def test_no_data_paths(flow_config):
    with pytest.raises(ConfigError, match=r"data.paths is empty"):
        train_ensemble(from_dict(TrainConfig, flow_config()))


def test_nan_loss_names_member_and_batch(make_dataset, flow_config):
    def poison(batch):
        batch["showers"] = batch["showers"].copy()
        batch["showers"][:, 0] = np.nan
        return batch

    dataset = make_dataset(120).map_batches(poison, batch_format="numpy").materialize()
    config = from_dict(TrainConfig, flow_config(epochs=1))
    with pytest.raises(
        NonFiniteLossError, match=r"ensemble member 0: training loss is nan at epoch 1, batch index 0"
    ):
        train_ensemble(config, dataset)
