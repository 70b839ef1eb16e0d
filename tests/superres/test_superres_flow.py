"""The flow builder: thesis Table 4.2 sizes, permutation pattern, normalization of a 1-D conditional density."""

from __future__ import annotations

import math

import pytest
import torch
from zuko.flows import MaskedAutoregressiveTransform
from zuko.lazy import UnconditionalTransform

from caloray.superres import permutation_orders, superres_maf


def _blocks(flow) -> list:
    return list(flow.transform.transforms)


@pytest.mark.parametrize(("features", "context", "outputs"), [(10, 31, 230), (12, 57, 276)])
def test_table_4_2_layer_sizes(features, context, outputs):
    flow = superres_maf(features, context)
    blocks = _blocks(flow)
    made = [b for b in blocks if isinstance(b, MaskedAutoregressiveTransform)]
    perms = [b for b in blocks if isinstance(b, UnconditionalTransform)]
    assert len(made) == 8 and len(perms) == 7 and isinstance(blocks[-1], MaskedAutoregressiveTransform)
    linear = [m for m in made[0].hyper.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [
        (features + context, 128), (128, 128), (128, outputs)
    ]


def test_permutations_alternate_reverse_and_seeded_random():
    orders = permutation_orders(10, 8, seed=5)
    assert len(orders) == 7
    for i, order in enumerate(orders):
        assert sorted(order.tolist()) == list(range(10))
        if i % 2 == 0:
            assert order.tolist() == list(range(9, -1, -1))
    assert all(torch.equal(a, b) for a, b in zip(orders, permutation_orders(10, 8, seed=5), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(orders, permutation_orders(10, 8, seed=6), strict=True))


def test_flow_is_reproducible_from_its_seeds():
    torch.manual_seed(0)
    a = superres_maf(4, 3, transforms=3, hidden_features=(16,))
    torch.manual_seed(0)
    b = superres_maf(4, 3, transforms=3, hidden_features=(16,))
    x, c = torch.randn(5, 4), torch.randn(5, 3)
    assert torch.equal(a(c).log_prob(x), b(c).log_prob(x))


def test_one_dimensional_density_is_normalized_including_the_linear_tails():
    torch.manual_seed(1)
    flow = superres_maf(1, 2, transforms=3, hidden_features=(16, 16)).to(torch.float64)
    with torch.no_grad():  # make the splines non-trivial
        for p in flow.parameters():
            p.mul_(3.0)
    grid = torch.linspace(-40.0, 40.0, 40001, dtype=torch.float64)[:, None]
    for context in torch.randn(3, 2, dtype=torch.float64):
        with torch.no_grad():
            density = flow(context.expand(grid.shape[0], 2)).log_prob(grid).exp()
        assert torch.trapezoid(density, grid[:, 0]).item() == pytest.approx(1.0, abs=1e-4)


def test_outside_the_bound_the_bijectors_are_linear_with_unit_slope():
    flow = superres_maf(1, 2, transforms=2, hidden_features=(8,), bound=3.0).to(torch.float64)
    x = torch.tensor([[20.0], [21.0]], dtype=torch.float64)
    c = torch.zeros(2, 2, dtype=torch.float64)
    transform = flow(c).transform
    z = transform(x)
    assert (z[1] - z[0]).item() == pytest.approx(1.0, abs=1e-12)
    assert transform.log_abs_det_jacobian(x, z).abs().max().item() < 1e-12
    assert math.isfinite(flow(c).log_prob(x).sum().item())
