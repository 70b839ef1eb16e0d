"""Test summary from null and alternative replicates: observed value, p-value, sigma, power."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy.stats import norm

ALPHAS: tuple[float, float] = (0.05, 0.01)


def p_value(null: np.ndarray, observed: float) -> float:
    """(1 + #{null ≥ observed}) / (1 + n_null): the empirical one-sided p-value with the +1 correction."""
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.count_nonzero(null >= observed)) / (1 + null.size))


def significance(p: float) -> float:
    """One-sided Gaussian significance Φ⁻¹(1 − p) in sigma (−inf at p = 1)."""
    return float(norm.isf(p))


def critical_value(null: np.ndarray, alpha: float) -> float:
    """The null's (1 − α) quantile (numpy's default linear interpolation)."""
    return float(np.quantile(np.asarray(null, dtype=np.float64), 1.0 - alpha))


def power(null: np.ndarray, alt: np.ndarray, alpha: float) -> float:
    """Fraction of alternative replicates strictly above the null's (1 − α) quantile."""
    alt = np.asarray(alt, dtype=np.float64)
    return float(np.count_nonzero(alt > critical_value(null, alpha)) / alt.size)


@dataclass(frozen=True, eq=False)
class TestResult:
    """One two-sample test: observed = median of the alternative replicates, its p-value and sigma
    against the empirical null, power at α = 0.05 and 0.01, and the replicate arrays themselves."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    statistic: str
    observed: float
    p_value: float
    sigma: float
    power_05: float
    power_01: float
    null: np.ndarray = field(repr=False)
    alt: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, float | str]:
        """The scalar fields as a dict (no arrays)."""
        return {
            "statistic": self.statistic,
            "observed": self.observed,
            "p_value": self.p_value,
            "sigma": self.sigma,
            "power_05": self.power_05,
            "power_01": self.power_01,
        }


def summarize(null: np.ndarray, alt: np.ndarray, statistic: str = "") -> TestResult:
    """Build the `TestResult` of null and alternative replicate arrays (spec/science.md §2)."""
    null = np.asarray(null, dtype=np.float64)
    alt = np.asarray(alt, dtype=np.float64)
    if null.size == 0 or alt.size == 0:
        raise ValueError("need at least one null and one alternative replicate")
    observed = float(np.median(alt))
    p = p_value(null, observed)
    return TestResult(
        statistic=statistic,
        observed=observed,
        p_value=p,
        sigma=significance(p),
        power_05=power(null, alt, ALPHAS[0]),
        power_01=power(null, alt, ALPHAS[1]),
        null=null,
        alt=alt,
    )
