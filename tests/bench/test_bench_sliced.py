"""bench.bench_sliced: the scipy baseline computes the same statistics as caloray, and the suite runs at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench import bench_sliced
from caloray.stats import STATISTICS, StatisticContext


def test_baseline_is_a_faithful_scipy_implementation_of_sks_and_swd() -> None:
    # Same data, same directions: the f64 numpy projection + scipy loop against caloray's f32 path.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 40)).astype(np.float32)
    y = rng.normal(0.1, 1.0, size=(300, 40)).astype(np.float32)
    context = StatisticContext.for_dimension(40, 9, seed=1)
    theta = context.directions.numpy()
    bx, by = bench_sliced.baseline_projection(x, theta), bench_sliced.baseline_projection(y, theta)
    np.testing.assert_allclose(bx, x.astype(np.float64) @ theta, rtol=1e-12)
    for name, baseline in (("sks", bench_sliced.baseline_sks), ("swd", bench_sliced.baseline_swd)):
        ours = STATISTICS[name](torch.as_tensor(x), torch.as_tensor(y), context).item()
        assert ours == pytest.approx(baseline(bx, by), rel=1e-5)


def test_suite_runs_at_tiny_sizes_and_reports_every_figure() -> None:
    rows = bench_sliced.main(["--dim", "30", "--rows", "200", "--slices", "5", "--repeat", "2"])
    names = [name for name, _, _ in rows]
    for name in ("sks", "swd"):
        assert any(f"stats/{name} " in n and "median of 2" in n for n in names)
        assert any(f"stats/{name} " in n and "ceiling" in n for n in names)
    assert all(np.isfinite(value) and value >= 0 for _, value, _ in rows)
