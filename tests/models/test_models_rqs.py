"""The direct RQS evaluation and the direct coupling-flow passes against zuko (a second implementation)."""

from __future__ import annotations

import pytest
import torch
from zuko.transforms import MonotonicRQSTransform

from caloray.models import coupling_flow
from caloray.models.bayesian import weight_draw
from caloray.models.coupling_flow import SAMPLE_CHUNK, conditional_spline_coupling, coupling_log_prob, coupling_sample
from caloray.models.rqs import rqs_call_and_ladj, rqs_inverse

BINS, BOUND, SLOPE = 8, 3.0, 1e-3


def _zuko_spline(phi: torch.Tensor) -> MonotonicRQSTransform:
    widths, heights, derivatives = phi.split([BINS, BINS, BINS - 1], dim=-1)
    return MonotonicRQSTransform(widths, heights, derivatives, bound=BOUND, slope=SLOPE)


def test_spline_matches_zuko_forward_inverse_and_log_det():
    generator = torch.Generator().manual_seed(0)
    phi = 2.0 * torch.randn(500, 5, 3 * BINS - 1, generator=generator, dtype=torch.float64)
    # Points inside and outside [−bound, bound] (identity there).
    x = 1.5 * BOUND * (2 * torch.rand(500, 5, generator=generator, dtype=torch.float64) - 1)
    reference = _zuko_spline(phi)
    y, ladj = rqs_call_and_ladj(x, phi, BINS, BOUND, SLOPE)
    y_ref, ladj_ref = reference.call_and_ladj(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ladj, ladj_ref.sum(-1), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(rqs_inverse(y, phi, BINS, BOUND, SLOPE), reference.inv(y_ref), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(rqs_inverse(y, phi, BINS, BOUND, SLOPE), x, rtol=1e-9, atol=1e-9)
    assert (x.abs() > BOUND).any() and (x.abs() < BOUND).any()


@pytest.mark.parametrize("bayesian", [False, True])
def test_direct_coupling_passes_match_zuko(bayesian):
    torch.manual_seed(0)
    flow = conditional_spline_coupling(9, 1, blocks=4, hidden_features=[16], bins=BINS, bound=BOUND,
                                       bayesian=bayesian, init_log_var=-4.0).double()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # clearly non-identity splines
        for parameter in flow.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    flow.eval()
    context = torch.randn(300, 1, dtype=torch.float64)
    with torch.no_grad(), weight_draw(flow, 5 if bayesian else None):
        torch.manual_seed(2)
        reference = flow(context).sample()
        for chunk in (1024, 64):  # one pass, and several chunks with a ragged last one
            torch.manual_seed(2)
            samples = coupling_sample(flow, context, chunk=chunk)
            torch.testing.assert_close(samples, reference, rtol=1e-8, atol=1e-8)
        x = 2.0 * torch.randn(300, 9, dtype=torch.float64)
        torch.testing.assert_close(coupling_log_prob(flow, x, context), flow(context).log_prob(x),
                                   rtol=1e-8, atol=1e-8)


def _shower_inn_sized_flow(seed: int = 0):
    """The ShowerINN CPU-recipe flow on ds1-photons (368 voxels + 5 extra dimensions), clearly non-identity."""
    torch.manual_seed(seed)
    flow = conditional_spline_coupling(373, 1, blocks=6, hidden_features=[64], bins=8, bound=14.0)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return flow.eval()


def test_sampler_matches_zuko_at_the_shower_inn_size_for_any_chunking_and_workers():
    flow = _shower_inn_sized_flow().double()
    context = torch.randn(150, 1, dtype=torch.float64)
    with torch.no_grad():
        torch.manual_seed(3)
        reference = flow(context).sample()
        for chunk, workers in ((SAMPLE_CHUNK, 1), (40, 2), (16, 3)):  # ragged last chunks, threads sharing chunks
            torch.manual_seed(3)
            samples = coupling_sample(flow, context, chunk=chunk, workers=workers)
            torch.testing.assert_close(samples, reference, rtol=1e-9, atol=1e-9)


def test_float32_sampler_is_as_accurate_as_zuko_in_float32():
    """float32 rounding is amplified where a spline is steep (slopes down to 1e-3), so float32 samples of any
    implementation differ from the exact inverse by up to ~1e-2 relative: the direct sampler must be as close to
    the float64 inverse of the same base noise as zuko's float32 sampler is."""
    flow = _shower_inn_sized_flow()
    context = torch.randn(400, 1)
    with torch.no_grad():
        torch.manual_seed(4)
        zuko_float32 = flow(context).sample().double()
        torch.manual_seed(4)
        noise = flow.base(None).sample((400,)).double()
        torch.manual_seed(4)
        direct = coupling_sample(flow, context).double()
        exact = flow.double()(context.double()).transform.inv(noise)
    errors = {name: ((samples - exact).abs() / exact.abs().clamp_min(1e-2)).flatten()
              for name, samples in (("zuko", zuko_float32), ("direct", direct))}
    for q in (0.5, 0.9, 0.99):
        assert float(errors["direct"].quantile(q)) <= 1.5 * float(errors["zuko"].quantile(q)) + 1e-7, q
    assert float(errors["direct"].median()) < 1e-5


def test_sampler_without_fixed_subnet_weights_falls_back_to_the_modules(monkeypatch):
    """A subnet that is not a chain of fixed affine maps (e.g. a Bayesian layer drawing weights per row) is run as
    a module; same numbers as the direct products."""
    flow = conditional_spline_coupling(9, 1, blocks=4, hidden_features=[16, 16], bins=BINS, bound=BOUND).double()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    context = torch.randn(100, 1, dtype=torch.float64)
    torch.manual_seed(2)
    direct = coupling_sample(flow, context, chunk=32)
    monkeypatch.setattr(coupling_flow, "_fixed_linear", lambda layer: None)
    torch.manual_seed(2)
    through_modules = coupling_sample(flow, context, chunk=32)
    with torch.no_grad():
        torch.manual_seed(2)
        reference = flow(context).sample()
    torch.testing.assert_close(through_modules, reference, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(direct, reference, rtol=1e-9, atol=1e-9)
