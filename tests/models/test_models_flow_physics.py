"""Physics-level checks of the Flow-I model: normalization, recovery of a known conditional Gaussian,
consistency of samples and likelihood."""

from __future__ import annotations

import math

import pytest
import torch

from caloray.models import LayerEnergyFlow

TEN_GEV = 1e4


def trapezoid_2d(values: torch.Tensor, step: float) -> float:
    return float(torch.trapezoid(torch.trapezoid(values, dx=step, dim=-1), dx=step, dim=-1))


def preprocessed_log_prob(model: LayerEnergyFlow, y: torch.Tensor, incident_mev: float) -> torch.Tensor:
    """log p(y | E_inc) on preprocessed features y (N, L) at one incident energy."""
    incident = torch.full((y.shape[0],), incident_mev, dtype=y.dtype)
    return model.flow(model.context(incident)).log_prob(y)


def gaussian_truth(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (N, 2) and width (N, 2) of the independent conditional Gaussian y | z, z = log10(E/10 GeV)."""
    mean = torch.stack([1.0 + 0.8 * z, 2.0 - 0.5 * z], dim=-1)
    width = torch.stack([0.25 + 0.1 * (z + 1.0), torch.full_like(z, 0.3)], dim=-1)
    return mean, width


def draw_gaussian_batch(model: LayerEnergyFlow, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Showers with one voxel per layer whose preprocessed layer energies follow `gaussian_truth`."""
    z = 2.0 * torch.rand(n, generator=generator, dtype=torch.float64) - 1.0
    mean, width = gaussian_truth(z)
    y = mean + width * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    showers = model.layer_transform.inverse(y)
    return {"showers": showers.float(), "incident_energies": (TEN_GEV * 10.0**z).float()}


@pytest.fixture(scope="module")
def trained_gaussian_flow() -> LayerEnergyFlow:
    """A small Flow-I (2 layers, 1 voxel each) trained on the analytic conditional Gaussian."""
    torch.manual_seed(1)
    generator = torch.Generator().manual_seed(2)
    model = LayerEnergyFlow([0, 1], transforms=2, hidden_features=(32, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps = 1500
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        loss = model.loss(draw_gaussian_batch(model, 512, generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return model.double().eval()


@pytest.mark.parametrize("trained", [False, True], ids=["untrained", "trained"])
def test_one_dimensional_density_integrates_to_one(trained: bool):
    torch.manual_seed(3)
    model = LayerEnergyFlow([0, 0, 0], transforms=3, hidden_features=(16, 16)).double()
    if trained:  # briefly fit a narrow 1-D conditional Gaussian so the density is far from the base
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        generator = torch.Generator().manual_seed(4)
        for _ in range(200):
            z = 2.0 * torch.rand(256, generator=generator, dtype=torch.float64) - 1.0
            y = (1.0 + z + 0.2 * torch.randn(256, generator=generator, dtype=torch.float64))[:, None]
            loss = -model.flow(model.context(TEN_GEV * 10.0**z)).log_prob(y).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    y_grid = torch.linspace(-20.0, 20.0, 40001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        for incident_mev in (2e3, 3e4, 9e4):
            density = preprocessed_log_prob(model, y_grid, incident_mev).exp()
            assert float(torch.trapezoid(density, y_grid[:, 0])) == pytest.approx(1.0, abs=1e-3)
            # The same normalization in physical units (per MeV of layer energy): integrate over E.
            energies = model.layer_transform.inverse(y_grid)
            physical = model.log_prob_features(
                energies, torch.full((energies.shape[0],), incident_mev, dtype=torch.float64), physical_units=True
            ).exp()
            assert float(torch.trapezoid(physical, energies[:, 0])) == pytest.approx(1.0, abs=1e-3)


def test_two_dimensional_density_integrates_to_one(trained_gaussian_flow: LayerEnergyFlow):
    torch.manual_seed(5)
    untrained = LayerEnergyFlow([0, 1], transforms=2, hidden_features=(16, 16)).double()
    n = 481
    with torch.no_grad():
        for model, lo, hi in ((untrained, -6.0, 6.0), (trained_gaussian_flow, -1.0, 5.0)):
            axis = torch.linspace(lo, hi, n, dtype=torch.float64)
            points = torch.cartesian_prod(axis, axis)
            for incident_mev in (3e3, 5e4):
                density = preprocessed_log_prob(model, points, incident_mev).exp().reshape(n, n)
                assert trapezoid_2d(density, (hi - lo) / (n - 1)) == pytest.approx(1.0, abs=1e-3)


def test_flow_recovers_conditional_gaussian(trained_gaussian_flow: LayerEnergyFlow):
    model = trained_gaussian_flow
    torch.manual_seed(6)
    for z in (-0.6, 0.0, 0.7):
        incident = torch.full((20000,), TEN_GEV * 10.0**z, dtype=torch.float64)
        y = model.layer_transform(model.sample(incident)["layer_energies"])
        mean, width = gaussian_truth(torch.tensor([z], dtype=torch.float64))
        assert torch.allclose(y.mean(0), mean[0], atol=0.03 * float(width[0].max()) + 0.02)
        assert torch.allclose(y.std(0), width[0], rtol=0.05)


def test_samples_and_likelihood_agree_with_analytic_entropy(trained_gaussian_flow: LayerEnergyFlow):
    """E_model[log p_model] of the model's own samples ≈ −H(analytic); the KL estimate is small."""
    model = trained_gaussian_flow
    torch.manual_seed(7)
    z = 2.0 * torch.rand(40000, dtype=torch.float64) - 1.0
    incident = TEN_GEV * 10.0**z
    with torch.no_grad():
        energies = model.sample(incident)["layer_energies"]
        y = model.layer_transform(energies)
        log_model = model.log_prob_features(energies, incident)
    mean, width = gaussian_truth(z)
    log_truth = torch.distributions.Normal(mean, width).log_prob(y).sum(-1)
    entropy = (0.5 * torch.log(2 * math.pi * math.e * width**2)).sum(-1)
    assert float(log_model.mean()) == pytest.approx(float(-entropy.mean()), abs=0.03)
    kl = float((log_model - log_truth).mean())
    assert -0.01 < kl < 0.03
