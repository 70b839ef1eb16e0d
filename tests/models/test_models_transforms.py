"""Preprocessing transforms: exact inverses, Jacobians against autograd, JSON configs, the fitted quantile map."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from caloray.models.transforms import (
    AlphaLogit,
    ExtraDimensions,
    IncidentEnergyNormalization,
    LayerNormalization,
    Log10Scale,
    MarginalGaussianization,
    incident_energy_transform,
    layer_energy_transform,
    transform_from_config,
)

GENERATOR_SEED = 11


def energies(n: int, low_exp: float = -2.0, high_exp: float = 5.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(GENERATOR_SEED)
    exponents = low_exp + (high_exp - low_exp) * torch.rand(n, generator=generator, dtype=torch.float64)
    return 10.0**exponents


def autograd_log_derivative(transform, x: torch.Tensor, *condition: torch.Tensor) -> torch.Tensor:
    """Element-wise log |dy/dx| of an element-wise transform, via autograd."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(transform(x, *condition).sum(), x)
    return grad.abs().log()


def test_flow_one_reference_values():
    """E_inc → log10(E_inc / 10 GeV); E_i → 2·(log10(E_i/MeV + 1e-3) − 1), E in MeV."""
    incident = incident_energy_transform()
    layer = layer_energy_transform()
    x = torch.tensor([1e3, 1e4, 1e5], dtype=torch.float64)
    assert torch.allclose(incident(x), torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64), atol=1e-15)
    e = torch.tensor([0.0, 10.0 - 1e-3, 1e5 - 1e-3], dtype=torch.float64)
    assert torch.allclose(layer(e), torch.tensor([-8.0, 0.0, 8.0], dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize(
    "transform", [incident_energy_transform(), layer_energy_transform(), Log10Scale(3.0, 0.5, 1.5)]
)
def test_log10_scale_round_trip_and_jacobian(transform: Log10Scale):
    x = torch.cat([torch.zeros(1, dtype=torch.float64), energies(1000)])
    if transform.offset == 0:
        x = x[1:]
    assert torch.allclose(transform.inverse(transform(x)), x, rtol=1e-12, atol=1e-12)
    # y → x → y over the physical range x >= 0 (below it x + offset cancels catastrophically).
    y_min = float(transform(torch.zeros(1, dtype=torch.float64))) if transform.offset > 0 else -14.0
    y = torch.linspace(y_min, 14.0, 101, dtype=torch.float64)
    assert torch.allclose(transform(transform.inverse(y)), y, rtol=0, atol=1e-12)
    assert torch.allclose(transform.log_abs_det_jacobian(x), autograd_log_derivative(transform, x), atol=1e-10)


def test_layer_energy_transform_inverts_exactly_at_the_keV_scale():
    """The 1 keV offset: zero, sub-keV and keV energies survive the round trip to 1e-12 MeV."""
    transform = layer_energy_transform()
    x = torch.tensor([0.0, 1e-7, 1e-4, 1e-3, 2e-3, 0.1, 1.0], dtype=torch.float64)
    assert torch.allclose(transform.inverse(transform(x)), x, rtol=0, atol=1e-15)


def test_alpha_logit_round_trip_and_jacobian():
    transform = AlphaLogit(1e-6)
    generator = torch.Generator().manual_seed(GENERATOR_SEED)
    x = torch.cat(
        [
            torch.tensor([0.0, 1.0, 1e-9, 1 - 1e-9], dtype=torch.float64),
            torch.rand(1000, generator=generator, dtype=torch.float64),
        ]
    )
    y = transform(x)
    assert torch.isfinite(y).all()
    assert float(y[0]) == pytest.approx(math.log(1e-6 / (1 - 1e-6)), rel=1e-12)
    assert torch.allclose(transform.inverse(y), x, rtol=0, atol=1e-12)
    assert torch.allclose(transform.log_abs_det_jacobian(x), autograd_log_derivative(transform, x), atol=1e-9)


def test_incident_energy_normalization():
    transform = IncidentEnergyNormalization(scale=2.0)
    generator = torch.Generator().manual_seed(GENERATOR_SEED)
    showers = torch.rand(7, 5, generator=generator, dtype=torch.float64) * 100
    incident = energies(7, 3, 5)
    y = transform(showers, incident)
    assert torch.allclose(y, showers / (2 * incident[:, None]), rtol=1e-15)
    assert torch.allclose(transform.inverse(y, incident), showers, rtol=1e-12, atol=1e-12)
    x = showers.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(transform(x, incident).sum(), x)
    assert torch.allclose(transform.log_abs_det_jacobian(showers, incident), grad.log(), atol=1e-12)


def test_layer_normalization_round_trip_and_empty_layers():
    voxel_layer = [0, 0, 1, 1, 1, 2]
    transform = LayerNormalization(voxel_layer)
    showers = torch.tensor([[1.0, 3.0, 0.0, 0.0, 0.0, 2.0], [0.5, 0.5, 1.0, 2.0, 1.0, 7.0]], dtype=torch.float64)
    layers = torch.zeros(2, 3, dtype=torch.float64).index_add(1, torch.tensor(voxel_layer), showers)
    fractions = transform(showers, layers)
    assert torch.equal(fractions[0, 2:5], torch.zeros(3, dtype=torch.float64))  # empty layer → 0, not NaN
    sums = torch.zeros(2, 3, dtype=torch.float64).index_add(1, torch.tensor(voxel_layer), fractions)
    assert torch.allclose(sums, (layers > 0).double())
    assert torch.allclose(transform.inverse(fractions, layers), showers, rtol=1e-12, atol=1e-12)


def test_extra_dimensions_round_trip():
    generator = torch.Generator().manual_seed(GENERATOR_SEED)
    layers = torch.rand(50, 6, generator=generator, dtype=torch.float64) * 1e3
    layers[layers < 200] = 0.0  # some empty layers, including trailing ones
    incident = layers.sum(-1) * 1.3 + 1.0
    transform = ExtraDimensions(scale=2.0)
    u = transform(layers, incident)
    assert ((u >= 0) & (u <= 1)).all()
    assert torch.allclose(u[:, 0], layers.sum(-1) / (2.0 * incident))
    assert torch.allclose(transform.inverse(u, incident), layers, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize(
    "transform",
    [
        incident_energy_transform(),
        layer_energy_transform(),
        AlphaLogit(1e-6),
        IncidentEnergyNormalization(2.0),
        LayerNormalization([0, 1, 1]),
        ExtraDimensions(2.0),
    ],
)
def test_config_round_trip_through_json(transform):
    config = json.loads(json.dumps(transform.config()))
    rebuilt = transform_from_config(config)
    assert type(rebuilt) is type(transform)
    assert rebuilt.config() == transform.config()


def test_unknown_transform_type():
    with pytest.raises(ValueError, match="unknown transform type"):
        transform_from_config({"type": "Nope"})


def _zero_inflated_sample(n: int, seed: int = 3) -> torch.Tensor:
    """(n, 3): a lognormal, a zero-inflated lognormal whose zeros sit in a narrow noise band, a constant."""
    generator = torch.Generator().manual_seed(seed)
    lognormal = torch.exp(torch.randn(n, generator=generator, dtype=torch.float64))
    band = -13.8 + 0.7 * torch.rand(n, generator=generator, dtype=torch.float64)
    inflated = torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < 0.5, band,
                           torch.randn(n, generator=generator, dtype=torch.float64))
    return torch.stack([lognormal, inflated, torch.full((n,), 2.0, dtype=torch.float64)], dim=1)


def test_marginal_gaussianization_makes_held_out_marginals_standard_normal():
    """Fitted on one sample, a second sample of the same distribution comes out N(0, 1) per feature, the zero
    band included; a constant feature still maps finitely.

    The KS distance to the normal CDF is bounded by the two samples' fluctuation (1.95·sqrt(2/n), 99.9%) plus
    the probability of one knot segment (≈ Δy·φ(0)): across the empty gap between the band and the bulk the
    linear map puts the data at the segment's two ends."""
    from scipy import stats

    n, knots = 20_000, 512
    transform = MarginalGaussianization(3, knots=knots).double()
    transform.fit(_zero_inflated_sample(n, seed=3))
    y = transform(_zero_inflated_sample(n, seed=4))
    segment = 2.0 * float(transform.y_max) / (knots - 1) / math.sqrt(2.0 * math.pi)
    for column in range(2):
        distance = stats.kstest(y[:, column].numpy(), "norm").statistic
        assert distance < 1.95 * math.sqrt(2.0 / n) + segment, (column, distance)
    assert torch.isfinite(y).all() and bool(transform.fitted)
    # The zero band holds half the mass: it is spread over the lower half of the Gaussian, not a spike.
    band = _zero_inflated_sample(20_000, seed=4)[:, 1] < -13.0
    assert abs(float((y[band, 1] < 0).double().mean()) - 1.0) < 0.02 and float(y[band, 1].std()) > 0.5


def test_marginal_gaussianization_inverse_and_jacobian():
    transform = MarginalGaussianization(3, knots=64).double()
    transform.fit(_zero_inflated_sample(5000))
    x = _zero_inflated_sample(1000, seed=9)
    x[:5] = torch.tensor([[-50.0, -40.0, 2.0], [1e3, 50.0, -7.0]] * 2 + [[0.5, 0.0, 2.0]], dtype=torch.float64)
    y, log_jacobian = transform.forward_and_log_abs_det_jacobian(x)
    torch.testing.assert_close(transform.inverse(y), x, rtol=1e-10, atol=1e-9)  # extrapolated tails included
    torch.testing.assert_close(log_jacobian, autograd_log_derivative(transform, x))
    # Monotone: sorting x sorts y, per feature.
    order = x[:, 0].argsort()
    assert (y[order, 0].diff() >= 0).all()


def test_marginal_gaussianization_rejects_a_wrong_sample():
    with pytest.raises(ValueError, match="knots >= 3"):
        MarginalGaussianization(2, knots=2)
    with pytest.raises(ValueError, match=r"\(N >= 2, 2\)"):
        MarginalGaussianization(2).fit(torch.zeros(10, 3))


def test_marginal_gaussianization_tails_are_gentle_where_the_end_knots_nearly_tie():
    """A feature whose largest values nearly tie (float32 logits of fractions near 1) gets a near-vertical last
    segment; a held-out value just beyond it must stay near y_max, not jump to y ≈ 100."""
    generator = torch.Generator().manual_seed(0)
    bulk = torch.randn(5000, 1, generator=generator, dtype=torch.float64)
    tied = 13.69 + 1e-6 * torch.rand(200, 1, generator=generator, dtype=torch.float64)
    transform = MarginalGaussianization(1, knots=128).double()
    transform.fit(torch.cat([bulk, tied]))
    beyond = torch.tensor([[13.75], [-8.0]], dtype=torch.float64)
    y, log_jacobian = transform.forward_and_log_abs_det_jacobian(beyond)
    mean_slope = 2.0 * float(transform.y_max) / float(transform.knots_x[0, 0, -1] - transform.knots_x[0, 0, 0])
    assert float(y[0, 0]) == pytest.approx(float(transform.y_max) + mean_slope * (13.75 - 13.69), abs=1e-3)
    first = float(transform.knots_x[0, 0, 0])
    assert float(y[1, 0]) == pytest.approx(-float(transform.y_max) + mean_slope * (-8.0 - first), abs=1e-9)
    torch.testing.assert_close(log_jacobian, torch.full_like(y, math.log(mean_slope)))
    torch.testing.assert_close(transform.inverse(y), beyond)


def test_column_quantiles_agree_with_numpy():
    from caloray.models.transforms import _column_quantiles

    sample = torch.randn(1001, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    levels = torch.tensor([0.0, 0.013, 0.5, 0.77, 1.0], dtype=torch.float64)
    expected = np.quantile(sample.numpy(), levels.numpy(), axis=0).T
    np.testing.assert_allclose(_column_quantiles(sample, levels).numpy(), expected, rtol=0, atol=1e-12)


def _ladder_sample(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (n, 2), condition (n,)): c on a 3-value ladder; x_0 | c ~ N(3c, (1 + c)²), x_1 | c zero-inflated with
    P(zero band) = 0.8 − 0.3c (as a voxel's emptiness falls with E_inc)."""
    generator = torch.Generator().manual_seed(seed)
    c = torch.randint(0, 3, (n,), generator=generator).to(torch.float64)
    x0 = 3.0 * c + (1.0 + c) * torch.randn(n, generator=generator, dtype=torch.float64)
    band = -13.8 + 0.7 * torch.rand(n, generator=generator, dtype=torch.float64)
    empty = torch.rand(n, generator=generator, dtype=torch.float64) < 0.8 - 0.3 * c
    x1 = torch.where(empty, band, torch.randn(n, generator=generator, dtype=torch.float64))
    return torch.stack([x0, x1], dim=1), c


def test_conditional_gaussianization_is_standard_normal_at_every_condition():
    """Fitted per condition value (8 bins on a 3-value ladder: repeated centres), a held-out sample is N(0, 1)
    at each c, where one map for all c is visibly not."""
    from scipy import stats

    n, knots = 30_000, 256
    x, c = _ladder_sample(n, seed=1)
    held_x, held_c = _ladder_sample(n, seed=2)
    conditional = MarginalGaussianization(2, knots=knots, condition_bins=8).double()
    conditional.fit(x, c)
    pooled = MarginalGaussianization(2, knots=knots).double()
    pooled.fit(x)
    segment = 2.0 * float(conditional.y_max) / (knots - 1) / math.sqrt(2.0 * math.pi)
    for value in (0.0, 1.0, 2.0):
        rows = held_c == value
        y = conditional(held_x[rows], held_c[rows])
        bound = 1.95 * math.sqrt(2.0 / int(rows.sum())) + segment
        for column in range(2):
            assert stats.kstest(y[:, column].numpy(), "norm").statistic < bound, (value, column)
        assert stats.kstest(pooled(held_x[rows])[:, 0].numpy(), "norm").statistic > 4 * bound


def test_conditional_gaussianization_between_centres_inverts_with_the_right_jacobian():
    """Between two centres the knots are interpolated: still monotone, exactly invertible, log-slope = autograd."""
    x, c = _ladder_sample(5000, seed=3)
    transform = MarginalGaussianization(2, knots=64, condition_bins=3).double()
    transform.fit(x, c)
    generator = torch.Generator().manual_seed(4)
    probe = 8.0 * torch.randn(400, 2, generator=generator, dtype=torch.float64)
    condition = -0.5 + 3.0 * torch.rand(400, generator=generator, dtype=torch.float64)  # also beyond the ends
    y, log_jacobian = transform.forward_and_log_abs_det_jacobian(probe, condition)
    torch.testing.assert_close(transform.inverse(y, condition), probe, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(log_jacobian, autograd_log_derivative(transform, probe, condition))
    fixed = torch.full((400,), 1.37, dtype=torch.float64)
    ordered = torch.linspace(-20.0, 20.0, 400, dtype=torch.float64)[:, None].expand(400, 2)
    assert (transform(ordered, fixed).diff(dim=0) > 0).all()


def test_gaussianization_reads_state_saved_before_condition_bins():
    transform = MarginalGaussianization(3, knots=16)
    transform.fit(torch.randn(200, 3, generator=torch.Generator().manual_seed(0)))
    old = {"knots_x": transform.knots_x[0].clone(), "y_max": transform.y_max.clone(), "fitted": transform.fitted}
    rebuilt = MarginalGaussianization(3, knots=16)
    rebuilt.load_state_dict(old)
    probe = torch.randn(10, 3)
    torch.testing.assert_close(rebuilt(probe), transform(probe))
