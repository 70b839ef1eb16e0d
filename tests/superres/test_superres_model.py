"""SuperResolutionFlow: config, likelihood bookkeeping, energy-conserving upsampling, a tiny training run."""

from __future__ import annotations

import json

import pytest
import torch

from caloray.superres import CoarseGrid, SuperResolutionFlow, coarse_energies, fine_groups, fine_layer_energies

SMALL = {"transforms": 2, "hidden_features": [16, 16], "bins": 4}


def _model(grid: CoarseGrid, **kwargs) -> SuperResolutionFlow:
    options = {**SMALL, "coarse_energy_max_mev": 200.0, "dtype": "float64", **kwargs}
    return SuperResolutionFlow(fine_shape=(grid.n_layers, grid.n_alpha, grid.n_r), groups=grid.groups, **options)


def _showers(grid: CoarseGrid, n: int, seed: int) -> dict[str, torch.Tensor]:
    """Coarse energies log-uniform in [0.05, 100] MeV (a quarter empty), split by a Dirichlet whose
    concentration depends on the coarse radial bin: r = 0 favours the first fine voxel, r = 1 the last."""
    gen = torch.Generator().manual_seed(seed)
    _, _, r = grid.coarse_coordinates
    coarse = 10 ** (torch.rand(n, grid.n_coarse, generator=gen, dtype=torch.float64) * 3.3 - 1.3)
    coarse[torch.rand(n, grid.n_coarse, generator=gen) < 0.25] = 0.0
    concentration = torch.tensor([[8.0, 4.0, 2.0, 1.0], [1.0, 2.0, 4.0, 8.0]], dtype=torch.float64)[torch.as_tensor(r)]
    torch.manual_seed(seed)
    fractions = torch.distributions.Dirichlet(concentration).sample((n,))  # (n, n_coarse, 4)
    fine = fractions * coarse[..., None]
    showers = torch.zeros(n, grid.n_voxels, dtype=torch.float64)
    showers[:, torch.as_tensor(grid.fine_of_coarse.reshape(-1))] = fine.reshape(n, -1)
    return {"showers": showers, "incident_energies": 10 ** (3 + 3 * torch.rand(n, generator=gen, dtype=torch.float64))}


def _train(model, train: dict, n_showers: int, steps: int = 150, lr: float = 3e-3) -> None:
    """`steps` Adam steps on random batches of 32 of the `n_showers` training showers."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _step in range(steps):
        rows = torch.randint(0, n_showers, (32,))
        loss = model.loss({key: value[rows] for key, value in train.items()})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_ds2_model_matches_the_thesis_sizes():
    a = SuperResolutionFlow.for_geometry("ds2", "A", transforms=1, hidden_features=[8])
    assert (a.grid.group_size, a.n_conditions) == (10, 31)
    assert SuperResolutionFlow.for_geometry("ds2", "A", oracle=False, transforms=1).n_conditions == 26
    assert SuperResolutionFlow.for_geometry("ds2", "B", transforms=1).n_conditions == 57
    assert a.kind == "superres-flow"


def test_config_rebuilds_the_model(tiny_grid):
    torch.manual_seed(0)
    model = _model(tiny_grid, permutation_seed=3)
    config = json.loads(json.dumps(model.config()))
    rebuilt = SuperResolutionFlow(**config)
    rebuilt.load_state_dict(model.state_dict())
    batch = _showers(tiny_grid, 5, seed=1)
    assert rebuilt.config() == model.config()
    assert torch.equal(rebuilt.log_prob(batch), model.log_prob(batch))
    assert all(p.dtype == torch.float64 for p in model.parameters())


def test_log_prob_sums_the_non_empty_coarse_voxels(tiny_grid):
    model = _model(tiny_grid)
    batch = _showers(tiny_grid, 6, seed=2)
    batch["showers"][0] = 0.0  # an empty shower has log p = 0
    log_p = model.log_prob(batch)
    voxel_log_p, _rows = model.voxel_log_prob(batch)
    n_full = (coarse_energies(batch["showers"], tiny_grid) > 0).sum().item()
    assert log_p.shape == (6,) and log_p.dtype == torch.float64 and log_p[0].item() == 0.0
    assert voxel_log_p.shape == (n_full,)
    assert torch.allclose(log_p.sum(), voxel_log_p.sum())
    assert torch.isfinite(model.loss(batch))


@pytest.mark.parametrize(("oracle", "fractions", "marginals"),
                         [(True, "logit", "none"), (False, "logit", "none"), (True, "stick", "gaussianize"),
                          (False, "stick", "none"), (False, "logit", "gaussianize")])
def test_upsampling_conserves_every_coarse_energy(tiny_grid, oracle, fractions, marginals):
    torch.manual_seed(4)
    model = _model(tiny_grid, oracle=oracle, fractions=fractions, marginals=marginals)
    batch = _showers(tiny_grid, 50, seed=3)
    model.fit_preprocessing(batch)
    coarse = coarse_energies(batch["showers"], tiny_grid)
    coarse[0, :3] = torch.tensor([0.0, 0.02, 0.016], dtype=torch.float64)  # empty and near-threshold voxels
    layers = fine_layer_energies(batch["showers"], tiny_grid) if oracle else None
    showers, removed = model.upsample_with_removed(coarse, batch["incident_energies"], layers)
    assert showers.shape == (50, tiny_grid.n_voxels)
    assert torch.allclose(coarse_energies(showers, tiny_grid) + removed, coarse, rtol=1e-12, atol=1e-15)
    assert torch.all((showers == 0) | (showers >= 0.015))
    assert torch.all(fine_groups(showers, tiny_grid)[coarse == 0] == 0) and torch.all(removed[coarse == 0] == 0)
    assert torch.equal(model.upsample(coarse[:0], batch["incident_energies"][:0], None if layers is None
                                      else layers[:0]), showers[:0])


def test_ds2_upsampling_runs_in_one_pass_and_conserves_energy():
    torch.manual_seed(5)
    model = SuperResolutionFlow.for_geometry("ds2", "A", transforms=1, hidden_features=[8], dtype="float64")
    grid = model.grid
    showers = torch.rand(1, grid.n_voxels, dtype=torch.float64) * (torch.rand(1, grid.n_voxels) < 0.2)
    coarse = coarse_energies(showers, grid)
    fine, removed = model.upsample_with_removed(coarse, torch.tensor([5e4]), fine_layer_energies(showers, grid))
    assert torch.allclose(coarse_energies(fine, grid) + removed, coarse, rtol=1e-12, atol=1e-15)


def test_oracle_needs_layer_energies_and_sample_is_refused(tiny_grid):
    model = _model(tiny_grid)
    with pytest.raises(ValueError, match="fine-layer energies"):
        model.upsample(torch.ones(1, 8), torch.ones(1))
    with pytest.raises(NotImplementedError, match="upsample"):
        model.sample(torch.ones(1))
    with pytest.raises(ValueError, match="dtype"):
        _model(tiny_grid, dtype="float16")


def test_tiny_training_reduces_the_loss_and_learns_the_radial_dependence(tiny_grid):
    torch.manual_seed(0)
    model = _model(tiny_grid, oracle=False, hidden_features=[32, 32], bins=8)
    train, test = _showers(tiny_grid, 300, seed=10), _showers(tiny_grid, 100, seed=11)
    with torch.no_grad():
        before = model.loss(test, add_noise=False).item()
    _train(model, train, 300)
    with torch.no_grad():
        after = model.loss(test, add_noise=False).item()
    assert after < before - 5.0, (before, after)
    # the first fine voxel carries ≈ 8/15 of the energy at coarse r = 0 and ≈ 1/15 at r = 1
    coarse = torch.full((200, tiny_grid.n_coarse), 50.0, dtype=torch.float64)
    fine = fine_groups(model.upsample(coarse, torch.full((200,), 1e4)), tiny_grid) / 50.0
    _, _, r = tiny_grid.coarse_coordinates
    first = fine[..., 0]
    assert first[:, r == 0].mean() > 0.35 and first[:, r == 1].mean() < 0.2


def test_checkpoint_round_trip_through_the_shared_serialization(tiny_grid, tmp_path):
    from caloray.models.serialization import read_checkpoint, save_model

    torch.manual_seed(6)
    model = _model(tiny_grid, permutation_seed=9)
    payload = read_checkpoint(save_model(model, tmp_path / "superres.pt"))
    assert payload["kind"] == "superres-flow"
    rebuilt = SuperResolutionFlow(**payload["config"])
    rebuilt.load_state_dict(payload["state_dict"], strict=True)
    batch = _showers(tiny_grid, 4, seed=7)
    assert torch.equal(rebuilt.log_prob(batch), model.log_prob(batch))


def test_numpy_batch_upsampling_of_reference_showers(tiny_grid):
    import numpy as np

    from caloray.superres import upsample_numpy

    torch.manual_seed(8)
    model = _model(tiny_grid)
    batch = _showers(tiny_grid, 10, seed=8)
    out = upsample_numpy(model, {"showers": batch["showers"].numpy().astype(np.float32),
                                 "incident_energies": batch["incident_energies"].numpy()[:, None]})
    assert out["showers"].shape == (10, tiny_grid.n_voxels) and out["showers"].dtype == np.float32
    assert out["incident_energies"].shape == (10,)
    coarse_in = coarse_energies(batch["showers"], tiny_grid).numpy()
    coarse_out = coarse_energies(torch.from_numpy(out["showers"]).double(), tiny_grid).numpy()
    assert np.all(coarse_out <= coarse_in * (1 + 1e-5) + 1e-6)
    assert np.all(coarse_out >= coarse_in - 4 * 0.015 - 1e-5)  # at most 4 fine voxels cut per coarse voxel


def test_training_features_are_noisy_fractions_inside_the_logit_range(tiny_grid):
    model = _model(tiny_grid)
    batch = _showers(tiny_grid, 20, seed=12)
    y, context, rows = model.features(batch, add_noise=True)
    y0, context0, rows0 = model.features(batch, add_noise=False)
    n_full = int((coarse_energies(batch["showers"], tiny_grid) > 0).sum())
    assert y.shape == (n_full, 4) and context.shape == (n_full, model.n_conditions) and torch.equal(rows, rows0)
    assert y.abs().max() <= 13.82 and torch.isfinite(context).all()
    fractions = model.fractions.logit.inverse(y)
    assert torch.allclose(fractions.sum(-1), torch.ones(n_full, dtype=torch.float64), atol=1e-9)
    assert not torch.equal(y, y0) and torch.equal(context[:, 1:], context0[:, 1:])
    assert (context[:, 0] - context0[:, 0]).abs().max() < 0.01  # ±0.5 keV on coarse energies ≥ 50 keV


def _zero_inflated_showers(grid: CoarseGrid, n: int, seed: int) -> dict[str, torch.Tensor]:
    """Like `_showers`, but the first fine voxel of every coarse voxel is empty in 95% of the showers (a nearly
    empty fine layer, as the first layer of ds2's first coarse layer): its expected share of E_coarse is
    0.05 × 1/4 (Dirichlet(1, 1, 1, 1)) = 1.25%."""
    gen = torch.Generator().manual_seed(seed)
    coarse = 10 ** (torch.rand(n, grid.n_coarse, generator=gen, dtype=torch.float64) * 2.0)
    torch.manual_seed(seed)
    fractions = torch.distributions.Dirichlet(torch.ones(4, dtype=torch.float64)).sample((n, grid.n_coarse))
    fractions[..., 0] *= torch.rand(n, grid.n_coarse, generator=gen) < 0.05
    fractions = fractions / fractions.sum(-1, keepdim=True)
    showers = torch.zeros(n, grid.n_voxels, dtype=torch.float64)
    showers[:, torch.as_tensor(grid.fine_of_coarse.reshape(-1))] = (fractions * coarse[..., None]).reshape(n, -1)
    return {"showers": showers, "incident_energies": torch.full((n,), 1e4, dtype=torch.float64)}


def test_stick_gaussianized_flow_keeps_a_nearly_empty_fine_voxel_nearly_empty(tiny_grid):
    torch.manual_seed(0)
    model = _model(tiny_grid, oracle=False, hidden_features=[32, 32], bins=8, fractions="stick",
                   marginals="gaussianize", bound=5.0)
    train = _zero_inflated_showers(tiny_grid, 400, seed=20)
    model.fit_preprocessing(train)
    _train(model, train, 400)
    coarse = coarse_energies(_zero_inflated_showers(tiny_grid, 300, seed=21)["showers"], tiny_grid)
    fine = fine_groups(model.upsample(coarse, torch.full((300,), 1e4)), tiny_grid)
    share = fine.sum((0, 1)) / coarse.sum()  # energy share of each of the 4 fine positions
    # truth: 1.25% in the nearly empty voxel, (1 − 1.25%) / 3 ≈ 33% in each other one (the same training with
    # the thesis' logit fractions on a [−5, 5] spline puts 23% into the first one)
    assert share[0] < 0.03, share
    assert torch.all((share[1:] > 0.2) & (share[1:] < 0.45)), share


def test_gaussianized_features_are_normal_on_the_fitting_sample_and_deterministic(tiny_grid):
    model = _model(tiny_grid, fractions="stick", marginals="gaussianize")
    batch = _showers(tiny_grid, 300, seed=13)
    assert model.needs_preprocessing_fit
    model.fit_preprocessing(batch)
    assert not model.needs_preprocessing_fit
    generator = torch.Generator().manual_seed(0)
    y, _, _ = model.features(batch, add_noise=True, generator=generator)  # the fit's own noise draw
    h, _ = model._to_flow_space(y)
    assert h.shape[1] == 3  # stick: g − 1 features
    assert h.mean(0).abs().max() < 0.02 and (h.std(0) - 1).abs().max() < 0.03
    p = torch.distributions.Normal(0.0, 1.0).cdf(h).sort(0).values  # ≈ uniform order statistics
    levels = (torch.arange(h.shape[0], dtype=torch.float64) + 0.5) / h.shape[0]
    assert (p - levels[:, None]).abs().max() < 0.02
    again = _model(tiny_grid, fractions="stick", marginals="gaussianize")
    again.fit_preprocessing(batch)
    assert torch.equal(again.gaussianization.knots_x, model.gaussianization.knots_x)


@pytest.mark.parametrize("fractions", ["logit", "stick"])
def test_gaussianized_log_prob_adds_the_autograd_jacobian(tiny_grid, fractions):
    torch.manual_seed(1)
    model = _model(tiny_grid, fractions=fractions, marginals="gaussianize")
    batch = _showers(tiny_grid, 40, seed=14)
    model.fit_preprocessing(batch)
    test = _showers(tiny_grid, 3, seed=15)
    log_p, _ = model.voxel_log_prob(test)
    y, context, _ = model.features(test)
    for i in range(y.shape[0]):
        jacobian = torch.autograd.functional.jacobian(lambda v: model._to_flow_space(v[None])[0][0], y[i])
        h = model._to_flow_space(y[i : i + 1])[0]
        expected = model.flow(context[i : i + 1]).log_prob(h) + torch.linalg.slogdet(jacobian)[1]
        assert torch.allclose(log_p[i], expected[0], rtol=1e-10, atol=1e-10)
    # a fitted model survives its config and state dict
    rebuilt = SuperResolutionFlow(**json.loads(json.dumps(model.config())))
    rebuilt.load_state_dict(model.state_dict())
    assert not rebuilt.needs_preprocessing_fit and torch.equal(rebuilt.log_prob(test), model.log_prob(test))


def test_unknown_fractions_or_marginals_are_refused(tiny_grid):
    with pytest.raises(ValueError, match="fractions"):
        _model(tiny_grid, fractions="softmax")
    with pytest.raises(ValueError, match="marginals"):
        _model(tiny_grid, marginals="standardize")
    with pytest.raises(ValueError, match="fine_noise_kev"):
        _model(tiny_grid, marginals="gaussianize", fine_noise_kev=0.0)


@pytest.mark.parametrize("oracle", [True, False])
def test_standardized_conditions_have_unit_moments_on_the_fitting_sample(tiny_grid, oracle):
    torch.manual_seed(2)
    model = _model(tiny_grid, oracle=oracle, standardize_conditions=True)
    batch = _showers(tiny_grid, 200, seed=16)
    raw_context = _model(tiny_grid, oracle=oracle).features(batch)[1]
    assert model.needs_preprocessing_fit
    model.fit_preprocessing(batch)
    model.fit_preprocessing(batch)  # refitting starts from the unstandardized conditions again
    _, context, _ = model.features(batch)
    assert torch.allclose(context.mean(0), torch.zeros(model.n_conditions, dtype=torch.float64), atol=1e-9)
    varying = raw_context.std(0) > 1e-6
    assert torch.allclose(context.std(0)[varying], torch.ones(int(varying.sum()), dtype=torch.float64))
    assert torch.allclose(context * model.condition_std + model.condition_mean, raw_context)
    rebuilt = SuperResolutionFlow(**json.loads(json.dumps(model.config())))
    rebuilt.load_state_dict(model.state_dict())
    test = _showers(tiny_grid, 3, seed=17)
    assert not rebuilt.needs_preprocessing_fit and torch.equal(rebuilt.log_prob(test), model.log_prob(test))
    coarse = coarse_energies(test["showers"], tiny_grid)
    layers = fine_layer_energies(test["showers"], tiny_grid) if oracle else None
    assert torch.allclose(coarse_energies(rebuilt.upsample(coarse, test["incident_energies"], layers), tiny_grid),
                          coarse, atol=4 * 0.015)
