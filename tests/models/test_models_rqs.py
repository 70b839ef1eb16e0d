"""The direct RQS evaluation and the direct coupling-flow passes against zuko (a second implementation)."""

from __future__ import annotations

import pytest
import torch
from zuko.transforms import MonotonicRQSTransform

from caloray.models.bayesian import weight_draw
from caloray.models.coupling_flow import conditional_spline_coupling, coupling_log_prob, coupling_sample
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
