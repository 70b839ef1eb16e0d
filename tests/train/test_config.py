"""Training config loading, seeds, schedules, checkpoints and resource planning (no training runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from caloray.config import from_dict
from caloray.errors import ConfigError
from caloray.models import CheckpointError, LayerEnergyFlow, save_model
from caloray.train import TrainConfig, load_train_config, max_concurrent_members
from caloray.train.build import resolve_model_kwargs
from caloray.train.checkpoint import MODEL_FILE, load_training_state, save_training_state
from caloray.train.config import ScheduleConfig
from caloray.train.optim import build_optimizer, build_scheduler, steps_per_epoch
from caloray.train.seeds import member_seed

DEMO = Path(__file__).resolve().parents[2] / "caloray" / "configs" / "train-flow1-demo.yaml"


def test_demo_config_loads():
    config = load_train_config(DEMO)
    assert config.model.kind == "layer-energy-flow"
    assert config.ensemble.members == 3
    assert config.data.geometry == "ecal-hcal"
    assert (config.optimizer.name, config.optimizer.lr, config.batch_size) == ("adam", 1e-4, 200)
    assert config.schedule.kind == "multistep" and config.schedule.gamma == 0.5


def test_unknown_key_suggests_closest(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("model: {kind: layer-energy-flow}\nepoch: 3\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: unknown key 'epoch'; did you mean 'epochs'\?"):
        load_train_config(path)
    path.write_text("model: {kind: layer-energy-flow}\noptimizer: {lr: 0.001, wieght_decay: 0.1}\n")
    with pytest.raises(
        ConfigError, match=r"optimizer: unknown key 'wieght_decay'; did you mean 'weight_decay'"
    ):
        load_train_config(path)


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"schedule": {"kind": "cosine"}}, "schedule.kind 'cosine' unknown"),
        ({"schedule": {"kind": "onecycle"}}, "max_lr must be set"),
        ({"data": {"validation_fraction": 1.0}}, "validation_fraction must be in"),
        ({"ensemble": {"members": 0}}, "members must be ≥ 1"),
        ({"epochs": 0}, "epochs must be ≥ 1"),
    ],
)
def test_invalid_values_are_config_errors(section, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(TrainConfig, {"model": {"kind": "layer-energy-flow"}, **section})


def test_member_seeds_are_deterministic_and_distinct():
    seeds = [member_seed(3, k) for k in range(10)]
    assert seeds == [member_seed(3, k) for k in range(10)]
    assert len(set(seeds)) == 10
    assert member_seed(4, 0) != member_seed(3, 0)


def test_schedules():
    params = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = build_optimizer(params, from_dict(TrainConfig, {"model": {"kind": "x"}}).optimizer)
    multistep, per_batch = build_scheduler(
        optimizer, ScheduleConfig("multistep", [2, 4], 0.5), epochs=6, steps_per_epoch=3
    )
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        multistep.step()
    assert not per_batch
    assert lrs == pytest.approx([1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5, 2.5e-5])

    optimizer = torch.optim.Adam(params, lr=1e-4)
    onecycle, per_batch = build_scheduler(
        optimizer, ScheduleConfig("onecycle", max_lr=1e-2), epochs=2, steps_per_epoch=5
    )
    seen = []
    for _ in range(10):  # exactly epochs × steps_per_epoch steps are allowed
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        onecycle.step()
    assert per_batch and max(seen) == pytest.approx(1e-2, rel=0.05) and seen[0] < 1e-3


def test_steps_per_epoch_matches_equal_sharding():
    assert steps_per_epoch(180, 1, 40) == 5
    assert steps_per_epoch(181, 2, 40) == 3  # 90 rows per worker


def test_voxel_layer_comes_from_geometry():
    config = from_dict(
        TrainConfig, {"model": {"kind": "layer-energy-flow"}, "data": {"geometry": "ecal-hcal"}}
    )
    kwargs = resolve_model_kwargs(config)
    assert len(kwargs["voxel_layer"]) == 1008 and max(kwargs["voxel_layer"]) == 5
    with pytest.raises(ConfigError, match=r"needs voxel_layer: set data.geometry"):
        resolve_model_kwargs(from_dict(TrainConfig, {"model": {"kind": "layer-energy-flow"}}))


def test_readout_threshold_comes_from_geometry_unless_set():
    def resolve(geometry: str, **kwargs) -> dict:
        config = {"model": {"kind": "layer-energy-flow", "kwargs": kwargs}, "data": {"geometry": geometry}}
        return resolve_model_kwargs(from_dict(TrainConfig, config))

    assert resolve("ecal-hcal")["readout_threshold_mev"] == 0.01515
    assert resolve("ds2")["readout_threshold_mev"] == 0.01515
    assert resolve("ds1-photons")["readout_threshold_mev"] == 0.0  # no threshold in the geometry
    assert resolve("ecal-hcal", readout_threshold_mev=0.1)["readout_threshold_mev"] == 0.1
    vae = {"model": {"kind": "shower-vae"}, "data": {"geometry": "ecal-hcal"}}
    assert "readout_threshold_mev" not in resolve_model_kwargs(from_dict(TrainConfig, vae))  # not a VAE argument


def _tiny_state(seed: int):
    torch.manual_seed(seed)
    model = LayerEnergyFlow([0, 0, 1, 1, 2], transforms=1, hidden_features=[4])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [1], 0.5)
    return model, optimizer, scheduler


def test_training_state_round_trip(tmp_path):
    model, optimizer, scheduler = _tiny_state(0)
    batch = {"showers": torch.rand(8, 5) * 100, "incident_energies": torch.full((8,), 5e3)}
    model.loss(batch).backward()
    optimizer.step()
    scheduler.step()
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 2.0}]
    save_training_state(tmp_path, model, optimizer, scheduler, epoch=1, history=history)
    expected_draw = torch.rand(3)

    restored, optimizer2, scheduler2 = _tiny_state(1)
    epoch, history2 = load_training_state(tmp_path, restored, optimizer2, scheduler2)
    assert (epoch, history2) == (1, history)
    assert torch.equal(torch.rand(3), expected_draw)  # RNG state restored
    for a, b in zip(model.state_dict().values(), restored.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert scheduler2.get_last_lr() == scheduler.get_last_lr()
    assert optimizer2.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]


def test_checkpoint_of_another_model_kind_is_refused(tmp_path):
    from caloray.models import EnergyRegressor

    save_model(EnergyRegressor([0, 0, 1, 1, 2], hidden_features=[4]), tmp_path / MODEL_FILE)
    model, optimizer, scheduler = _tiny_state(0)
    with pytest.raises(
        CheckpointError, match="holds kind 'energy-regressor', the config trains 'layer-energy-flow'"
    ):
        load_training_state(tmp_path, model, optimizer, scheduler)


def test_concurrency_follows_cluster_cpus(ray_local):
    def config(members, workers):
        return from_dict(
            TrainConfig,
            {"model": {"kind": "x"}, "ensemble": {"members": members, "num_workers": workers}},
        )

    assert max_concurrent_members(config(3, 1)) == 2  # the session cluster has 2 CPUs
    assert max_concurrent_members(config(3, 2)) == 1  # sequential fallback
    assert max_concurrent_members(config(1, 1)) == 1
    with pytest.raises(ConfigError, match="one member needs 3 CPU"):
        max_concurrent_members(config(1, 3))
