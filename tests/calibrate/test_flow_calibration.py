"""A flow trained on a known conditional likelihood calibrates like the analytic MLE (issue 4 criterion)."""

import copy
import math

import numpy as np
import pytest
import torch

from caloray.calibrate import MLESettings, find_mle
from caloray.calibrate.engine import calibrate_features, model_log_likelihood
from caloray.calibrate.reference import reference_mle
from caloray.models import LayerEnergyFlow

RELATIVE_WIDTH = 0.1  # x ~ N(z, 0.1·z), z in MeV


def _response(z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return z * (1 + RELATIVE_WIDTH * torch.randn(z.shape, generator=generator, dtype=torch.float64))


@pytest.fixture(scope="module")
def trained_flow():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = LayerEnergyFlow([0], transforms=3, hidden_features=(32, 32)).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 1500)
    for _ in range(1500):
        z = torch.empty(512, dtype=torch.float64).uniform_(5_000, 150_000, generator=generator)
        x = _response(z, generator).clamp_min(1.0)
        loss = model.loss({"layer_energies": x[:, None], "incident_energies": z})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return model.eval()


def _analytic_log_likelihood(x: torch.Tensor):
    def log_likelihood(z, rows):
        sigma = RELATIVE_WIDTH * z
        return -0.5 * ((x[rows, None] - z) / sigma) ** 2 - torch.log(sigma)

    return log_likelihood


def test_trained_flow_matches_analytic_mle_and_covers_68_percent(trained_flow):
    generator = torch.Generator().manual_seed(2)
    n = 3000
    z_true = torch.full((n,), 50_000.0, dtype=torch.float64)
    x = _response(z_true, generator)
    settings = MLESettings(n_scan=48)
    flow = calibrate_features(trained_flow, x[:, None], 10_000.0, 100_000.0, settings)
    analytic = find_mle(_analytic_log_likelihood(x), n, 10_000.0, 100_000.0, settings)
    relative = ((flow.e_pred - analytic.e_pred) / analytic.e_pred).abs()
    assert relative.median().item() < 0.005
    assert torch.quantile(relative, 0.9).item() < 0.01
    covered = ((flow.z_lo <= z_true) & (z_true <= flow.z_hi)).double().mean().item()
    assert abs(covered - 0.68) < 0.02, covered
    # per-shower resolution tracks the analytic one
    ratio = (flow.resolution / analytic.resolution).median().item()
    assert ratio == pytest.approx(1.0, abs=0.05)


def test_engine_agrees_with_scipy_reference_on_the_same_flow(trained_flow):
    generator = torch.Generator().manual_seed(3)
    z_true = torch.linspace(20_000, 80_000, 20, dtype=torch.float64)
    x = _response(z_true, generator)[:, None]
    engine = calibrate_features(trained_flow, x, 10_000.0, 100_000.0)
    reference = reference_mle(model_log_likelihood(trained_flow, x), len(x), 10_000.0, 100_000.0)
    for column, value in enumerate((engine.e_pred, engine.z_lo, engine.z_hi)):
        got, want = value.numpy(), reference[:, column]
        ok = np.isfinite(want)
        assert np.array_equal(ok, np.isfinite(got))
        assert np.max(np.abs(got[ok] - want[ok]) / want[ok]) < 1e-3, column
    assert math.isfinite(float(engine.resolution.mean()))


def test_float32_engine_agrees_with_float64_within_spec_accuracy(trained_flow):
    # The engine evaluates float32 models in float32 (with a wider stencil): E_pred and both crossings stay
    # within the 0.1% the spec's comparisons use, and the flags are the same.
    generator = torch.Generator().manual_seed(4)
    z_true = torch.linspace(12_000, 95_000, 40, dtype=torch.float64)
    x = _response(z_true, generator)[:, None]
    wide = calibrate_features(trained_flow, x, 10_000.0, 100_000.0)
    single = calibrate_features(copy.deepcopy(trained_flow).float(), x.float(), 10_000.0, 100_000.0)
    assert torch.equal(wide.flags, single.flags)
    for got, want in ((single.e_pred, wide.e_pred), (single.z_lo, wide.z_lo), (single.z_hi, wide.z_hi)):
        ok = torch.isfinite(want)
        assert torch.equal(ok, torch.isfinite(got))
        assert ((got[ok] - want[ok]) / want[ok]).abs().max().item() < 1e-3
    # What float32 costs: the float64 likelihood at the float32 E_pred is within 1e-3 of its maximum,
    # i.e. a shift far inside the Δ(−2 log L) = 1 interval.
    log_likelihood = model_log_likelihood(trained_flow, x)
    rows = torch.arange(len(x))
    loss = log_likelihood(wide.e_pred[:, None], rows) - log_likelihood(single.e_pred[:, None], rows)
    assert loss.max().item() < 1e-3
