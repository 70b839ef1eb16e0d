"""p-value, sigma and power formulas, and the calibrated test's summary, on hand-made arrays (exact expected values)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from caloray.validate import (
    TestResult,
    calibrated_test,
    critical_value,
    format_p,
    format_sigma,
    p_value,
    power,
    significance,
    summarize,
)

NULL = np.arange(1.0, 101.0)  # 1, 2, ..., 100


def test_summary_of_hand_made_arrays() -> None:
    alt = np.array([95.5, 96.0, 97.0, 99.5, 101.0])
    result = summarize(NULL, alt, "toy")
    assert result.observed == 97.0  # median of the alternative
    assert result.median_p == pytest.approx(5 / 101, abs=0)  # 1 + #{97, 98, 99, 100}, over 1 + 100
    assert result.median_sigma == pytest.approx(norm.ppf(1 - 5 / 101), rel=1e-12)
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
    assert result.median_p == pytest.approx(77 / 101, abs=0)  # 26..100 is 75 values, plus one
    assert result.power_05 == 0.0 and result.power_01 == 0.0


def test_empty_arrays_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        summarize(np.array([]), np.array([1.0]))


def test_calibrated_test_is_the_p_value_and_median_p_only_a_summary() -> None:
    alt = np.array([95.5, 96.0, 97.0, 99.5, 101.0])
    test = calibrated_test(NULL, 42.0, batch_size=64)
    result = summarize(NULL, alt, "toy", test)
    assert result.p_value == test.p_value == pytest.approx(60 / 101, abs=0)  # 1 + #{42..100} = 1 + 59
    assert result.sigma == pytest.approx(norm.ppf(1 - 60 / 101), rel=1e-12)
    assert result.median_p == pytest.approx(5 / 101, abs=0)  # unchanged: the thesis summary
    summary = result.summary()
    assert summary["p_value"] == test.p_value and summary["median_p"] == result.median_p
    assert summary["test_statistic"] == 42.0 and summary["test_batch"] == 64 and summary["p_floor"] is False
    with pytest.raises(ValueError, match="median_p"):
        _ = summarize(NULL, alt).p_value  # no calibrated test: no p_value to gate on


def test_calibrated_test_counts_rounding_ties_and_flags_the_floor() -> None:
    assert calibrated_test(NULL, 100.0 * (1 + 1e-13), 8).p_value == pytest.approx(2 / 101, abs=0)  # a rounding tie
    assert calibrated_test(NULL, 100.0 * (1 + 1e-6), 8).p_value == pytest.approx(1 / 101, abs=0)
    top = calibrated_test(NULL, 1000.0, 8)
    assert top.at_floor and top.p_value == pytest.approx(1 / 101, abs=0)
    assert format_p(top.p_value, top.at_floor) == "< 0.0099" and format_sigma(top.sigma, True) == "> 2.33"
    assert format_p(0.25, False) == "0.25" and format_sigma(0.674, False) == "0.67"
    assert not calibrated_test(NULL, 99.0, 8).at_floor
