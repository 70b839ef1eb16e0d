"""Member-batched evaluation of a Flow-I ensemble equals the member loop of `Ensemble.log_prob_features`."""

import pytest
import torch

from caloray.models import Ensemble, LayerEnergyFlow
from caloray.models.stacked import StackedMAF, stackable, stacked_log_prob_features


def _ensemble(dtype: torch.dtype, n_members: int = 4, layers: int = 5) -> Ensemble:
    torch.manual_seed(0)
    members = []
    for _ in range(n_members):
        member = LayerEnergyFlow(list(range(layers)), transforms=3, hidden_features=(32, 32))
        with torch.no_grad():  # distinct members, splines far from the identity
            for p in member.parameters():
                p.add_(0.2 * torch.randn_like(p))
        members.append(member)
    return Ensemble.from_members(members).to(dtype).eval()


def _inputs(dtype: torch.dtype, layers: int = 5):
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(40, layers, generator=generator, dtype=dtype) * 5e3
    x[0, 1] = 0.0  # an empty layer: the 1 keV offset keeps it finite
    x[1] = 1e5  # far outside the spline bound: the identity tails
    z = torch.rand(40, 7, generator=generator, dtype=dtype) * 9e4 + 1e3
    return x, z


def test_batched_members_equal_member_loop_float64():
    ensemble = _ensemble(torch.float64)
    x, z = _inputs(torch.float64)
    with torch.no_grad():
        loop = ensemble.log_prob_features(x, z)
    batched = stacked_log_prob_features(ensemble)(x, z)
    assert batched.shape == (40, 7)
    assert torch.allclose(batched, loop, rtol=1e-10, atol=1e-10)


def test_batched_members_equal_member_loop_float32():
    ensemble = _ensemble(torch.float32)
    x, z = _inputs(torch.float32)
    with torch.no_grad():
        loop = ensemble.log_prob_features(x, z)
    batched = stacked_log_prob_features(ensemble)(x, z)
    assert torch.allclose(batched, loop, rtol=1e-4, atol=1e-3)


def test_each_member_matches_its_own_flow():
    ensemble = _ensemble(torch.float64, n_members=3)
    stacked = StackedMAF([member.flow for member in ensemble.members])
    y = torch.randn(20, 5, dtype=torch.float64) * 6  # some beyond the bound 14 after scaling
    y[0] = 20.0
    c = torch.randn(20, 1, dtype=torch.float64)
    per_member = stacked.log_prob(y, c)
    for k, member in enumerate(ensemble.members):
        with torch.no_grad():
            assert torch.allclose(per_member[k], member.flow(c).log_prob(y), rtol=1e-10, atol=1e-10)


def test_non_flow_models_fall_back():
    assert stacked_log_prob_features(LayerEnergyFlow([0, 1])) is None
    # One feature: zuko builds an element-wise transform, not a MADE; the loop handles it.
    single = Ensemble.from_members([LayerEnergyFlow([0]), LayerEnergyFlow([0])])
    assert not stackable([m.flow for m in single.members]) and stacked_log_prob_features(single) is None
    with pytest.raises(ValueError, match="StackedMAF needs"):
        StackedMAF([m.flow for m in single.members])
