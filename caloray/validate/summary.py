"""Test summary: the thesis' replicate summary (observed = median alternative, `median_p`, power) and the
calibrated test that gates (`CalibratedTest`: one held-out experiment against its permutation null)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy.stats import norm

ALPHAS: tuple[float, float] = (0.05, 0.01)
#: Relative tolerance under which a permutation value counts as a tie with the calibrated test's observed value.
#: Values equal in exact arithmetic (KS-type statistics of tied data take few distinct values) can differ in the
#: last bits because the observed experiment and the permutations are evaluated in batches of different shapes;
#: counting them as ties keeps the test valid (ties only make it conservative).
TIE_RTOL = 1e-9


def p_value(null: np.ndarray, observed: float, rtol: float = 0.0) -> float:
    """(1 + #{null ≥ observed}) / (1 + n_null): the empirical one-sided p-value with the +1 correction
    (null values within `rtol`·|observed| below the observed one count as ties, hence as ≥)."""
    null = np.asarray(null, dtype=np.float64)
    threshold = observed - rtol * abs(observed)
    return float((1 + np.count_nonzero(null >= threshold)) / (1 + null.size))


def p_floor(n_null: int) -> float:
    """The smallest p-value `p_value` can return with n_null null values: 1 / (1 + n_null)."""
    return 1.0 / (1 + n_null)


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


def format_p(p: float, at_floor: bool) -> str:
    """A p-value for people: "p < floor" when it sits at the empirical floor (the true p may be anything below)."""
    return f"< {p:.3g}" if at_floor else f"{p:.3g}"


def format_sigma(sigma: float, at_floor: bool) -> str:
    """A significance for people: "> s" when its p-value sits at the empirical floor."""
    return f"> {sigma:.2f}" if at_floor else f"{sigma:.2f}"


@dataclass(frozen=True, eq=False)
class CalibratedTest:
    """The test that gates (spec §2): one experiment of `batch_size` held-out reference rows and as many candidate
    rows (`statistic_value`), against `null`, the statistic of random re-splits of exactly those pooled rows.

    Why a permutation null of the held-out rows: under H0 the 2·batch_size pooled rows are exchangeable, so the
    observed split is one more draw from the permutation distribution and the +1-corrected p-value satisfies
    P(p ≤ α) ≤ α for every statistic, every sample size and any feature distribution (equality when
    α·(1 + n_null) is an integer and there are no ties). A bootstrap null drawn from the rest of the reference is
    only approximately calibrated: resampling with replacement creates tied rows, and null replicates that share
    a finite pool are correlated; on zero-inflated features that inflated SWD, MMD and FGD to 0.07–0.08 at 0.05.
    at_floor: p = 1/(1 + n_null), i.e. no permutation reached the observed value ("p < …", "sigma > …").
    """

    __test__: ClassVar[bool] = False  # not a pytest test class

    statistic_value: float
    p_value: float
    sigma: float
    at_floor: bool
    batch_size: int
    null: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, float | int | bool]:
        """Scalar fields under their table names."""
        return {"test_statistic": self.statistic_value, "test_batch": self.batch_size, "p_value": self.p_value,
                "sigma": self.sigma, "p_floor": self.at_floor}


def calibrated_test(null: np.ndarray, statistic_value: float, batch_size: int) -> CalibratedTest:
    """The `CalibratedTest` of a held-out experiment's statistic against its permutation null (n_null,)."""
    null = np.asarray(null, dtype=np.float64)
    if null.size == 0:
        raise ValueError("the calibrated test needs at least one permutation")
    p = p_value(null, statistic_value, rtol=TIE_RTOL)
    return CalibratedTest(float(statistic_value), p, significance(p), bool(p <= p_floor(null.size)), int(batch_size),
                          null)


@dataclass(frozen=True, eq=False)
class TestResult:
    """One two-sample test (spec §2): the thesis summary — observed = median of the alternative replicates,
    `median_p` and `median_sigma` its p-value and sigma against the empirical null, power at α = 0.05 and 0.01,
    the replicate arrays — and `test`, the calibrated test that gates (its p-value is `p_value`).

    `median_p` is a summary, not a test: under H0 it sits near 0.5 and almost never rejects.
    """

    __test__: ClassVar[bool] = False  # not a pytest test class

    statistic: str
    observed: float
    median_p: float
    median_sigma: float
    power_05: float
    power_01: float
    null: np.ndarray = field(repr=False)
    alt: np.ndarray = field(repr=False)
    test: CalibratedTest | None = field(default=None, repr=False)

    def _calibrated(self) -> CalibratedTest:
        if self.test is None:
            raise ValueError("this result has no calibrated test (summarize(..., test=...)); median_p is only "
                             "the thesis summary")
        return self.test

    @property
    def p_value(self) -> float:
        """The calibrated test's p-value (the one that gates)."""
        return self._calibrated().p_value

    @property
    def sigma(self) -> float:
        """The calibrated test's significance Φ⁻¹(1 − p) in sigma."""
        return self._calibrated().sigma

    def summary(self) -> dict[str, float | int | bool | str]:
        """The scalar fields as a dict (no arrays); the calibrated test's fields when it was run."""
        out: dict[str, float | int | bool | str] = {
            "statistic": self.statistic,
            "observed": self.observed,
            "median_p": self.median_p,
            "median_sigma": self.median_sigma,
            "power_05": self.power_05,
            "power_01": self.power_01,
        }
        if self.test is not None:
            out |= self.test.summary()
        return out


def summarize(null: np.ndarray, alt: np.ndarray, statistic: str = "", test: CalibratedTest | None = None
              ) -> TestResult:
    """Build the `TestResult` of null and alternative replicate arrays (spec/science.md §2), with the calibrated
    `test` when given."""
    null = np.asarray(null, dtype=np.float64)
    alt = np.asarray(alt, dtype=np.float64)
    if null.size == 0 or alt.size == 0:
        raise ValueError("need at least one null and one alternative replicate")
    observed = float(np.median(alt))
    p = p_value(null, observed)
    return TestResult(
        statistic=statistic,
        observed=observed,
        median_p=p,
        median_sigma=significance(p),
        power_05=power(null, alt, ALPHAS[0]),
        power_01=power(null, alt, ALPHAS[1]),
        null=null,
        alt=alt,
        test=test,
    )
