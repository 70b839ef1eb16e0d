"""The CLI entry on a YAML config and an HDF5 file: one member on 2 DDP workers with OneCycle."""

from __future__ import annotations

import math

import yaml

from caloray.models import LayerEnergyFlow
from caloray.train import run_training


def test_run_training_two_worker_ddp_member_with_onecycle(
    ray_local, shower_file, flow_config, tmp_path, capsys
):
    config = flow_config(
        data={"paths": [str(shower_file(240))]},
        ensemble={"members": 1, "num_workers": 2},
        schedule={"kind": "onecycle", "max_lr": 1e-2, "milestones": []},
        checkpoint_every=2,
        epochs=2,
    )
    path = tmp_path / "train-ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_training(path)

    (member,) = result.members
    assert result.n_train + result.n_validation == 240
    assert [row["epoch"] for row in member.history] == [1, 2]
    assert all(math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"]) for row in member.history)
    lr_epoch1, lr_epoch2 = (row["lr"] for row in member.history)
    assert lr_epoch1 > 1e-3 and lr_epoch2 < lr_epoch1  # OneCycle: warm up towards max_lr, then anneal
    # checkpoint_every=2 → the only checkpoint is the last epoch's
    assert [p.name for p in member.checkpoint_dir.parent.glob("epoch-*")] == ["epoch-0002"]
    (model,) = result.load_members()
    assert isinstance(model, LayerEnergyFlow) and model.n_voxels == result.n_voxels == 1008
    assert f"member 0: val_loss {member.final_val_loss:.4f}" in capsys.readouterr().out
