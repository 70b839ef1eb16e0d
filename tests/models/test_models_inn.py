"""ShowerINN: exact preprocessing inverse, flow invertibility and normalization, energy bookkeeping, training,
determinism."""

from __future__ import annotations

import math

import pytest
import torch
from models_toy_data import make_toy_batch

from caloray.models import ShowerINN
from caloray.models.coupling_flow import conditional_spline_coupling, coupling_masks
from caloray.models.features import layer_sums


def _inn(voxel_layer, **kwargs) -> ShowerINN:
    torch.manual_seed(0)
    return ShowerINN(voxel_layer, blocks=4, hidden_features=[16], **kwargs)


def _perturb(module: torch.nn.Module, scale: float = 0.5, seed: int = 1) -> None:
    """Random, clearly non-identity weights (an untrained flow is close to the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


#: Every way the INN brings its logit features to unit scale; the tests below run for each.
MARGINALS = pytest.mark.parametrize("marginals", [
    {"marginals": "standardize"}, {"marginals": "gaussianize"}, {"marginals": "gaussianize", "energy_bins": 4},
], ids=["standardize", "gaussianize", "gaussianize-per-energy"])


def _perturbed_toy_inn(voxel_layer, n_showers: int, marginals: dict | None = None) -> tuple[ShowerINN, dict]:
    """A toy INN fitted on `n_showers` toy showers, with clearly non-identity weights, in eval mode."""
    model = _inn(voxel_layer, **(marginals or {}))
    batch = make_toy_batch(n_showers)
    model.fit_standardization(batch["showers"], batch["incident_energies"])
    _perturb(model.flow, scale=0.2)
    return model.eval(), batch


@MARGINALS
def test_preprocessing_round_trip_is_exact(toy_voxel_layer, marginals):
    batch = make_toy_batch(256, dtype=torch.float64)
    model = _inn(toy_voxel_layer, **marginals).double()
    model.fit_standardization(batch["showers"], batch["incident_energies"])
    assert bool(model.standardization_fitted) and not model.needs_preprocessing_fit
    h = model.preprocess(batch["showers"], batch["incident_energies"])
    showers, layer_energies = model.postprocess(h, batch["incident_energies"])
    torch.testing.assert_close(showers, batch["showers"], rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(layer_energies, layer_sums(batch["showers"], model.voxel_layer, model.n_layers),
                               rtol=1e-5, atol=1e-8)


def test_coupling_masks_transform_every_feature_each_pair():
    masks = coupling_masks(11, 4)
    for first, second in zip(masks[::2], masks[1::2], strict=True):
        assert torch.equal(first, ~second) and 0 < int(first.sum()) < 11
    assert not torch.equal(masks[0], masks[2])
    assert all(torch.equal(a, b) for a, b in zip(masks, coupling_masks(11, 4), strict=True))


def test_flow_inverse_and_sample_log_prob_agree():
    torch.manual_seed(0)
    flow = conditional_spline_coupling(7, 1, blocks=4, hidden_features=[16], bins=8, bound=14.0).double()
    _perturb(flow, scale=0.2)
    context = torch.randn(200, 1, dtype=torch.float64)
    distribution = flow(context)
    x, log_p = distribution.rsample_and_log_prob()
    torch.testing.assert_close(distribution.log_prob(x), log_p, rtol=1e-6, atol=1e-6)
    z = distribution.transform(x)
    torch.testing.assert_close(distribution.transform.inv(z), x, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bayesian", [False, True])
def test_log_prob_integrates_to_one_in_two_dimensions(bayesian):
    torch.manual_seed(0)
    flow = conditional_spline_coupling(2, 1, blocks=4, hidden_features=[16], bins=6, bound=3.0,
                                       bayesian=bayesian, init_log_var=-4.0).double()
    _perturb(flow, scale=0.15)
    flow.eval()
    grid = torch.linspace(-8.0, 8.0, 641, dtype=torch.float64)
    points = torch.cartesian_prod(grid, grid)
    cell = (grid[1] - grid[0]) ** 2
    from caloray.models.bayesian import weight_draw

    with torch.no_grad(), weight_draw(flow, 3 if bayesian else None):
        density = flow(torch.full((len(points), 1), 0.7, dtype=torch.float64)).log_prob(points).exp()
    integral = float(density.sum() * cell)
    assert math.isclose(integral, 1.0, abs_tol=2e-3), integral


@MARGINALS
def test_samples_respect_the_decoded_layer_energies(toy_voxel_layer, marginals):
    model, batch = _perturbed_toy_inn(toy_voxel_layer, 512, marginals)
    torch.manual_seed(5)
    sample = model.sample(batch["incident_energies"])
    showers, layer_energies = sample["showers"], sample["layer_energies"]
    assert showers.shape == batch["showers"].shape and torch.isfinite(showers).all()
    assert (showers >= 0).all() and (layer_energies >= 0).all()
    torch.testing.assert_close(layer_sums(showers, model.voxel_layer, model.n_layers), layer_energies,
                               rtol=1e-5, atol=1e-6)
    assert (layer_energies.sum(-1) <= model.energy_scale * batch["incident_energies"] * (1 + 1e-6)).all()
    assert (showers == 0).any(), "the noise-region threshold leaves exact zeros"


@MARGINALS
def test_short_training_reduces_held_out_nll(toy_voxel_layer, marginals):
    model = _inn(toy_voxel_layer, **marginals)
    train, held_out = make_toy_batch(512, seed=1), make_toy_batch(512, seed=2)
    model.fit_preprocessing(train)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def held_out_nll() -> float:
        model.eval()
        with torch.no_grad():
            return -float(model.log_prob(held_out).mean())

    before = held_out_nll()
    model.train()
    for step in range(60):
        optimizer.zero_grad()
        rows = torch.arange(step * 64, step * 64 + 64) % 512
        model.loss({key: value[rows] for key, value in train.items()}).backward()
        optimizer.step()
    assert held_out_nll() < before - 1.0


def test_sampling_is_deterministic_under_a_seed(toy_voxel_layer):
    model = _inn(toy_voxel_layer).eval()
    energies = make_toy_batch(32)["incident_energies"]
    torch.manual_seed(3)
    first = model.sample(energies)["showers"]
    torch.manual_seed(3)
    assert torch.equal(first, model.sample(energies)["showers"])


@MARGINALS
def test_physical_log_prob_only_shifts_by_the_jacobian(toy_voxel_layer, marginals):
    """log_prob_features (B, K) equals log_prob(physical_units=True) per candidate, and the Jacobian term for
    u_0 = E_tot / (s·E_inc) is −log(s·E_inc) plus E_inc-independent terms."""
    model = _inn(toy_voxel_layer, **marginals).double()
    batch = make_toy_batch(4, dtype=torch.float64)
    model.fit_standardization(*make_toy_batch(256, dtype=torch.float64).values())
    model.eval()
    candidates = torch.tensor([[5e3, 2e4]] * 4, dtype=torch.float64)
    table = model.log_prob_features(batch["showers"], candidates)
    for k in range(2):
        single = model.log_prob({"showers": batch["showers"], "incident_energies": candidates[:, k]},
                                physical_units=True)
        torch.testing.assert_close(table[:, k], single)
    assert table.shape == (4, 2) and torch.isfinite(table).all()


@MARGINALS
def test_sampling_does_not_depend_on_threads_or_chunks(toy_voxel_layer, monkeypatch, marginals):
    """Flow and preprocessing inverse in chunks shared among 2 threads give the numbers of one single-threaded
    pass over the whole batch."""
    import caloray.models.inn as inn_module

    model, batch = _perturbed_toy_inn(toy_voxel_layer, 700, marginals)
    torch.manual_seed(3)
    one_pass = model.sample(batch["incident_energies"])
    monkeypatch.setattr(inn_module, "POSTPROCESS_CHUNK", 96)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(3)
        shared = model.sample(batch["incident_energies"])
    finally:
        torch.set_num_threads(threads)
    for key in ("showers", "layer_energies"):
        torch.testing.assert_close(shared[key], one_pass[key], rtol=1e-6, atol=1e-9)


@MARGINALS
def test_feature_jacobian_matches_autograd(toy_voxel_layer, marginals):
    """The log-Jacobian that `physical_units` adds (logit, then the marginal transform) is Σ log |dh/du| of the
    element-wise map from unit features u to flow features h, computed here by autograd."""
    model = _inn(toy_voxel_layer, **marginals).double()
    batch = make_toy_batch(300, dtype=torch.float64)
    model.fit_standardization(batch["showers"], batch["incident_energies"])
    unit = model._add_noise(model.unit_features(batch["showers"][:50], batch["incident_energies"][:50]))
    unit.requires_grad_(True)
    h, log_marginals = model._to_flow_space(model.logit(unit), batch["incident_energies"][:50])
    (grad,) = torch.autograd.grad(h.sum(), unit)  # the map is element-wise: the gradient is the diagonal
    expected = grad.abs().log().sum(-1)
    torch.testing.assert_close(model.logit.log_abs_det_jacobian(unit).sum(-1) + log_marginals, expected)
