"""`caloray.models.load` reads checkpoint files only; registry references are the tracking layer's job."""

from __future__ import annotations

import pytest
import torch

from caloray.models import CheckpointError, build, load, save_model
from caloray.tracking import load as tracking_load


def test_checkpoint_paths_load_the_same_weights_through_both_doors(tmp_path):
    torch.manual_seed(0)
    model = build("energy-regressor", {"voxel_layer": [0, 0, 1], "hidden_features": [8]})
    path = tmp_path / "reg.pt"
    save_model(model, path)
    for loaded in (load(path), load(str(path)), tracking_load(str(path))):
        assert loaded.kind == "energy-regressor"
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(),
                                                      strict=True))


def test_a_registry_name_is_refused_with_a_pointer_to_the_tracking_loader(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"demo-flow1:3: no such checkpoint file .*caloray\.tracking\.load"):
        load("demo-flow1:3")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load(tmp_path / "missing.pt")
