"""p-value, sigma and power formulas on hand-made null/alternative arrays (exact expected values)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from caloray.validate import TestResult, critical_value, p_value, power, significance, summarize

NULL = np.arange(1.0, 101.0)  # 1, 2, ..., 100


def test_summary_of_hand_made_arrays() -> None:
    alt = np.array([95.5, 96.0, 97.0, 99.5, 101.0])
    result = summarize(NULL, alt, "toy")
    assert result.observed == 97.0  # median of the alternative
    assert result.p_value == pytest.approx(5 / 101, abs=0)  # 1 + #{97, 98, 99, 100}, over 1 + 100
    assert result.sigma == pytest.approx(norm.ppf(1 - 5 / 101), rel=1e-12)
    # Null 95% quantile = 1 + 0.95·99 = 95.05 → all 5 above; 99% quantile = 99.01 → 99.5 and 101 above.
    assert critical_value(NULL, 0.05) == pytest.approx(95.05, rel=1e-12)
    assert critical_value(NULL, 0.01) == pytest.approx(99.01, rel=1e-12)
    assert result.power_05 == 1.0
    assert result.power_01 == pytest.approx(0.4, abs=0)
    assert isinstance(result, TestResult) and result.statistic == "toy"


def test_p_value_counts_ties_and_has_the_plus_one() -> None:
    assert p_value(NULL, 100.0) == pytest.approx(2 / 101, abs=0)  # the tie counts as ≥
    assert p_value(NULL, 1000.0) == pytest.approx(1 / 101, abs=0)  # never 0
    assert p_value(NULL, -5.0) == 1.0


def test_significance_values() -> None:
    assert significance(0.5) == pytest.approx(0.0, abs=1e-15)
    assert significance(norm.sf(2.0)) == pytest.approx(2.0, rel=1e-12)
    assert significance(0.0013498980316301) == pytest.approx(3.0, rel=1e-9)
    assert significance(1.0) == -np.inf


def test_power_is_strictly_above_the_quantile() -> None:
    null = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # 80% quantile = 3.2 (linear interpolation)
    assert power(null, np.array([3.2, 3.2, 3.3, 10.0]), alpha=0.2) == 0.5
    assert power(null, np.array([-1.0, 0.0]), alpha=0.2) == 0.0


def test_summary_with_an_even_number_of_alternatives() -> None:
    result = summarize(NULL, np.array([10.0, 20.0, 30.0, 40.0]))
    assert result.observed == 25.0
    assert result.p_value == pytest.approx(77 / 101, abs=0)  # 26..100 is 75 values, plus one
    assert result.power_05 == 0.0 and result.power_01 == 0.0


def test_empty_arrays_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        summarize(np.array([]), np.array([1.0]))
