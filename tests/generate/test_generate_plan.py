"""Shard plans, seeds, bit-identical shards and the supported model set-ups (no Ray); shard verification is the
shared runner's (tests/pipelines/test_shards.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloray.generate import EnergySpec, GenerationError, ShowerSampler, generate_showers, plan_shards
from caloray.generate.models import ModelSource
from caloray.generate.plan import Shard, shard_energies, shard_streams, validation_streams
from caloray.generate.shards import ShardContext, content_sha256, write_generated_shard
from caloray.io import inspect_shower_file, read_shower_file
from caloray.models import (
    BayesianShowerINN,
    EnergyRegressor,
    Ensemble,
    LayerEnergyFlow,
    ShowerINN,
    ShowerVAE,
    VoxelFlow,
    VoxelFlowStudent,
    load_model,
)

TOY_LAYERS = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]  # 12 voxels in 3 layers
SPEC = EnergySpec("log-uniform", 1e3, 1e5)


def test_plan_covers_every_row_once() -> None:
    shards = plan_shards(25, 10)
    assert [(s.index, s.start, s.stop) for s in shards] == [(0, 0, 10), (1, 10, 20), (2, 20, 25)]
    assert [s.file_name for s in shards] == ["shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]
    assert sum(s.rows for s in plan_shards(10_000_000, 10_000)) == 10_000_000
    assert len(plan_shards(10, 100)) == 1


def test_seeds_depend_only_on_seed_and_shard_index() -> None:
    a = shard_energies(SPEC, 7, Shard(3, 30, 40))
    b = shard_energies(SPEC, 7, Shard(3, 30, 40))
    assert a[0].tobytes() == b[0].tobytes() and a[1] == b[1]
    others = [shard_energies(SPEC, 7, Shard(2, 20, 30)), shard_energies(SPEC, 8, Shard(3, 30, 40))]
    assert all(o[1] != a[1] and o[0].tobytes() != a[0].tobytes() for o in others)
    assert validation_streams(7)[1] not in {shard_streams(7, i)[1] for i in range(100)}
    energies, torch_seed = a
    assert energies.dtype == np.float32 and 0 <= torch_seed < 2**63
    assert np.all((energies >= 1e3 * (1 - 1e-6)) & (energies <= 1e5 * (1 + 1e-6)))


def _context(out_dir, **overrides) -> ShardContext:
    values = {"out_dir": str(out_dir), "seed": 5, "energies": SPEC, "n_showers": 30, "n_shards": 3, "shard_size": 10,
              "batch_size": 4, "fingerprint": "f" * 16, "attrs": {"model": "toy"}, "geometry": None}
    return ShardContext(**{**values, **overrides})


def test_same_shard_twice_gives_identical_bytes(world, tmp_path) -> None:
    sampler = ShowerSampler(load_model(world.model_path))
    shard = Shard(1, 10, 20)
    first = write_generated_shard(sampler, shard, _context(tmp_path / "a"))
    second = write_generated_shard(sampler, shard, _context(tmp_path / "b"))
    a, b = read_shower_file(tmp_path / "a" / first.file), read_shower_file(tmp_path / "b" / second.file)
    for key in ("showers", "incident_energies"):
        assert a[key].dtype == np.float32 and a[key].tobytes() == b[key].tobytes()
    assert first.content_sha256 == second.content_sha256 and first.sha256 == second.sha256
    assert first.rows == 10 and first.first_shower_index == 10
    other = write_generated_shard(sampler, Shard(2, 20, 30), _context(tmp_path / "a"))
    assert other.content_sha256 != first.content_sha256
    info = inspect_shower_file(tmp_path / "a" / first.file)
    assert (info.n_showers, info.n_voxels) == (10, 6)
    assert info.attrs["shard_index"] == 1 and info.attrs["seed"] == 5 and info.attrs["generator"] == "caloray.generate"
    assert info.attrs["content_sha256"] == content_sha256(a["incident_energies"], a["showers"])


# ----- model set-ups ---------------------------------------------------------------------------------------

def _energies(n: int = 7) -> np.ndarray:
    return np.linspace(2e3, 9e4, n).astype(np.float32)


def test_vae_and_vae_ensemble_generate_full_showers() -> None:
    torch.manual_seed(0)
    vae = ShowerVAE(TOY_LAYERS, latent_dim=3, hidden_features=(8,))
    for model in (vae, Ensemble.from_members([vae, ShowerVAE(TOY_LAYERS, latent_dim=3, hidden_features=(8,))])):
        sampler = ShowerSampler(model)
        showers = generate_showers(sampler, _energies(), torch_seed=1, batch_size=3)
        assert showers.shape == (7, 12) and showers.dtype == np.float32 and np.all(showers >= 0)
        assert np.array_equal(showers, generate_showers(sampler, _energies(), torch_seed=1, batch_size=3))


def test_flow_chain_generates_showers_whose_layers_sum_to_flow1() -> None:
    torch.manual_seed(0)
    flow1 = LayerEnergyFlow(TOY_LAYERS, transforms=1, hidden_features=(8,))
    flow2 = VoxelFlow(TOY_LAYERS, transforms=1, hidden_features=(16,))
    sampler = ShowerSampler(flow2, flow1)
    assert sampler.description == "layer-energy-flow → voxel-flow"
    showers = generate_showers(sampler, _energies(), torch_seed=3, batch_size=16)
    torch.manual_seed(3)
    expected = flow1.sample(torch.as_tensor(_energies()))["layer_energies"]  # Flow-I draws first
    sums = np.zeros((7, 3))
    np.add.at(sums.T, TOY_LAYERS, showers.T.astype(np.float64))
    assert showers.shape == (7, 12)
    np.testing.assert_allclose(sums, expected.numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("make", [lambda: ShowerVAE(TOY_LAYERS, latent_dim=3, hidden_features=(8,)),
                                  lambda: ShowerINN(TOY_LAYERS, blocks=2, hidden_features=(8,)),
                                  lambda: BayesianShowerINN(TOY_LAYERS, blocks=2, hidden_features=(8,))])
def test_shower_model_with_flow1_keeps_its_voxel_shares_and_flow1_layer_energies(make) -> None:
    torch.manual_seed(0)
    flow1 = LayerEnergyFlow(TOY_LAYERS, transforms=1, hidden_features=(8,))
    model = make()
    sampler = ShowerSampler(model, flow1)
    assert sampler.description == f"layer-energy-flow → {model.kind}"
    showers = generate_showers(sampler, _energies(), torch_seed=3, batch_size=16).astype(np.float64)
    torch.manual_seed(3)  # the same draws by hand: Flow-I first, then the shower model on its own
    energies = torch.as_tensor(_energies())
    expected = flow1.sample(energies)["layer_energies"].numpy()
    own = model.sample(energies)["showers"].numpy().astype(np.float64)
    layers = np.asarray(TOY_LAYERS)
    sums, own_sums = np.zeros((7, 3)), np.zeros((7, 3))
    np.add.at(sums.T, layers, showers.T)
    np.add.at(own_sums.T, layers, own.T)
    np.testing.assert_allclose(sums, expected, rtol=1e-4, atol=1e-3)
    assert np.all(own_sums > 0) and not np.allclose(own_sums, expected, rtol=1e-2)  # so the layers did change
    # within a layer, the shares are the model's own draw: only the layer energies came from Flow-I
    np.testing.assert_allclose(showers / sums[:, layers], own / own_sums[:, layers], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cls", [ShowerINN, BayesianShowerINN])
def test_inns_generate_reproducible_full_showers(cls) -> None:
    torch.manual_seed(0)
    sampler = ShowerSampler(cls(TOY_LAYERS, blocks=2, hidden_features=(8,)))
    assert sampler.description == cls.kind
    showers = generate_showers(sampler, _energies(), torch_seed=1, batch_size=3)
    assert showers.shape == (7, 12) and np.all(showers >= 0)
    assert np.array_equal(showers, generate_showers(sampler, _energies(), torch_seed=1, batch_size=3))


def test_student_chain_samples_with_the_fast_flow2() -> None:
    torch.manual_seed(0)
    flow1 = LayerEnergyFlow(TOY_LAYERS, transforms=1, hidden_features=(8,))
    student = VoxelFlowStudent({"voxel_layer": TOY_LAYERS, "transforms": 1, "hidden_features": [16]})
    sampler = ShowerSampler(student, flow1)
    assert sampler.description == "layer-energy-flow → voxel-flow-student"
    showers = generate_showers(sampler, _energies(), torch_seed=3, batch_size=16)
    torch.manual_seed(3)
    expected = flow1.sample(torch.as_tensor(_energies()))["layer_energies"]
    sums = np.zeros((7, 3))
    np.add.at(sums.T, TOY_LAYERS, showers.T.astype(np.float64))
    np.testing.assert_allclose(sums, expected.numpy(), rtol=1e-4, atol=1e-3)


def test_layer_flow_with_one_voxel_per_layer_is_a_shower_generator() -> None:
    torch.manual_seed(0)
    layers = [2, 0, 1]  # voxel v lies in layer layers[v]
    flow = LayerEnergyFlow(layers, transforms=1, hidden_features=(8,))
    showers = generate_showers(ShowerSampler(flow), _energies(), torch_seed=2, batch_size=10)
    torch.manual_seed(2)
    sampled = flow.sample(torch.as_tensor(_energies()))["layer_energies"].numpy()
    np.testing.assert_array_equal(showers, sampled[:, layers])


@pytest.mark.parametrize(("make", "message"), [
    (lambda: (LayerEnergyFlow(TOY_LAYERS, transforms=1, hidden_features=(8,)), None),
     "samples 3 layer energies, not the 12 voxels"),
    (lambda: (VoxelFlow(TOY_LAYERS, transforms=1, hidden_features=(8,)), None), "needs the Flow-I"),
    (lambda: (EnergyRegressor(TOY_LAYERS), None), "cannot generate full showers"),
    (lambda: (EnergyRegressor(TOY_LAYERS), LayerEnergyFlow(TOY_LAYERS, transforms=1)),
     "only used with a voxel-flow or a shower model"),
    (lambda: (ShowerVAE(TOY_LAYERS, hidden_features=(8,)), EnergyRegressor(TOY_LAYERS)),
     "layer_model must be a layer-energy-flow"),
    (lambda: (ShowerINN(TOY_LAYERS, blocks=1), LayerEnergyFlow([0, 1, 1], transforms=1)),
     "different voxel → layer maps"),
    (lambda: (VoxelFlow(TOY_LAYERS, transforms=1), LayerEnergyFlow([0, 1, 1], transforms=1)),
     "different voxel → layer maps"),
])
def test_models_that_cannot_generate_showers_are_clear_errors(make, message) -> None:
    model, layer_model = make()
    with pytest.raises(GenerationError, match=message):
        ShowerSampler(model, layer_model)


def test_checkpoint_sources_are_pinned_by_digest(world, tmp_path) -> None:
    from caloray.generate.models import resolve_model_source

    source = resolve_model_source(str(world.model_path))
    assert source.ref == str(world.model_path.resolve()) and not source.registry and len(source.sha256) == 64
    assert isinstance(source, ModelSource)
    with pytest.raises(Exception, match="no such checkpoint"):
        resolve_model_source(str(tmp_path / "missing.pt"))


def test_reference_sample_keeps_feature_rows_and_condition_rows_apart(tmp_path) -> None:
    from generate_world import layer_geometry

    from caloray.generate.validation import reference_sample
    from caloray.io import write_showers

    geometry = layer_geometry()
    paths = []
    for i, (first, n) in enumerate(((0, 5000), (5000, 3000))):  # spans several read blocks of 4096 rows
        rows = np.arange(first, first + n, dtype=np.float64)
        showers = np.zeros((n, 6), np.float32)
        showers[:, 0] = rows  # total energy = global row number
        paths.append(write_showers(tmp_path / f"ref-{i}.h5", showers, rows + 0.5))  # energy = row + 0.5
    features, energies = reference_sample(paths, geometry, ["total-energy"], 1000, 300, np.random.default_rng(0))
    feature_rows = features["total-energy"][:, 0]
    condition_rows = energies.astype(np.float64) - 0.5
    assert features["total-energy"].shape == (1000, 1) and energies.shape == (300,)
    assert len(np.unique(feature_rows)) == 1000 and len(np.unique(condition_rows)) == 300
    assert not set(feature_rows) & set(condition_rows)
    assert feature_rows.max() >= 5000 and feature_rows.min() < 5000  # both files contribute
    small, cond = reference_sample(paths[:1], geometry, ["total-energy"], 10, 4998, np.random.default_rng(0))
    assert len(small["total-energy"]) == 5000 and len(cond) == 4998  # too few rows: energies drawn from all
