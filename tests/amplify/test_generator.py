"""1-D spline flow training, exact flow CDF, and equal-share ensemble sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloray.amplify.generator import (
    EnsembleGenerator,
    FlowConfig,
    FlowGenerator,
    ResampleGenerator,
    build_flow,
    ensemble_shares,
    flow_cdf,
    train_flow,
)
from caloray.amplify.metrics import quantile_fractions
from caloray.amplify.truth import camel_back

TINY = FlowConfig(transforms=1, bins=6, hidden_features=[8], steps=60, learning_rate=2e-2, noise=0.1)


def test_spline_bound_covers_truth_range():
    """zuko splines are the identity outside [−bound, bound]: bound 10 transforms x = ±7.5, bound 5 does not."""
    x = torch.tensor([[-7.5], [7.5]])
    moved = {}
    for bound in (5.0, 10.0):
        torch.manual_seed(0)
        flow = build_flow(FlowConfig(transforms=1, bound=bound))
        with torch.no_grad():
            for p in flow.parameters():
                p.normal_(0, 1)
            moved[bound] = (flow().transform(x) - x).abs().max().item()
    assert moved[5.0] == 0.0
    assert moved[10.0] > 1e-2


def test_tiny_flow_training_reduces_loss_and_is_deterministic():
    x = camel_back().sample(100, np.random.default_rng(0))
    _, losses = train_flow(x, TINY, seed=3)
    assert len(losses) == TINY.steps
    assert np.mean(losses[-10:]) < losses[0] - 0.3
    _, again = train_flow(x, TINY, seed=3)
    assert losses == again
    state = torch.random.get_rng_state()
    train_flow(x, TINY, seed=4)
    assert torch.equal(state, torch.random.get_rng_state())  # global torch RNG untouched


def test_flow_cdf_matches_its_samples():
    x = camel_back().sample(100, np.random.default_rng(1))
    gen = FlowGenerator(train_flow(x, TINY, seed=0)[0])
    edges = camel_back().quantile_edges(10)
    q = gen.quantile_probabilities(edges)
    assert q.sum() == pytest.approx(1.0) and np.all(q >= 0)
    sample = gen.sample(40_000, np.random.default_rng(2))
    p = quantile_fractions(sample, edges)
    assert np.all(np.abs(p - q) < 5 * np.sqrt(q * (1 - q) / sample.size) + 1e-4)
    np.testing.assert_array_equal(sample[:100], gen.sample(40_000, np.random.default_rng(2))[:100])
    assert np.all(np.diff(flow_cdf(gen.flow, np.linspace(-12, 12, 50))) >= 0)


def test_ensemble_shares_are_equal():
    assert ensemble_shares(100, 10) == [10] * 10
    assert ensemble_shares(103, 4) == [26, 26, 26, 25]
    with pytest.raises(ValueError):
        ensemble_shares(10, 0)


def test_ensemble_samples_equal_share_from_each_member():
    members = [ResampleGenerator(np.full(5, float(k))) for k in range(4)]  # member k only emits k
    ens = EnsembleGenerator(members)
    sample = ens.sample(1_000, np.random.default_rng(0))
    assert np.bincount(sample.astype(int)).tolist() == [250, 250, 250, 250]
    edges = np.array([-8.0, 0.5, 1.5, 2.5, 8.0])
    np.testing.assert_allclose(ens.quantile_probabilities(edges), [0.25] * 4)
