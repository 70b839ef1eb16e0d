"""Truth densities with a known CDF: truncated 1-D Gaussian mixtures, the camel back, equal-probability quantiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

_SQRT2 = np.sqrt(2.0)


def _phi(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF (erfc form keeps precision deep in the lower tail)."""
    return 0.5 * special.erfc(-np.asarray(z, dtype=float) / _SQRT2)


@dataclass(frozen=True)
class GaussianMixture:
    """Σ_k w_k N(μ_k, σ_k) restricted to [low, high] and renormalised there (exactly, not approximately).

    Also the model of the 5-parameter fit: any weights/means/sigmas, same truncation.
    """

    weights: tuple[float, ...]
    means: tuple[float, ...]
    sigmas: tuple[float, ...]
    low: float = -8.0
    high: float = 8.0

    def __post_init__(self) -> None:
        if not len(self.weights) == len(self.means) == len(self.sigmas) >= 1:
            raise ValueError("weights, means and sigmas need the same (non-zero) length")
        if min(self.sigmas) <= 0 or min(self.weights) < 0 or not self.high > self.low:
            raise ValueError(f"invalid mixture {self}")

    # ----- arrays ---------------------------------------------------------------------------------
    @property
    def _w(self) -> np.ndarray:
        w = np.asarray(self.weights, dtype=float)
        return w / w.sum()

    @property
    def _mu(self) -> np.ndarray:
        return np.asarray(self.means, dtype=float)

    @property
    def _sd(self) -> np.ndarray:
        return np.asarray(self.sigmas, dtype=float)

    def _untruncated_cdf(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=float)[..., None] - self._mu) / self._sd
        return _phi(z) @ self._w

    @property
    def normalization(self) -> float:
        """Mass of the untruncated mixture inside [low, high]."""
        return float(self._untruncated_cdf(np.array(self.high)) - self._untruncated_cdf(np.array(self.low)))

    # ----- density, CDF, inverse CDF -----------------------------------------------------------------
    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Truncated, normalised density; zero outside [low, high]."""
        x = np.asarray(x, dtype=float)
        z = (x[..., None] - self._mu) / self._sd
        dens = (np.exp(-0.5 * z**2) / (np.sqrt(2 * np.pi) * self._sd)) @ self._w
        return np.where((x >= self.low) & (x <= self.high), dens / self.normalization, 0.0)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Truncated CDF: 0 below `low`, 1 above `high`."""
        x = np.clip(np.asarray(x, dtype=float), self.low, self.high)
        lo = self._untruncated_cdf(np.array(self.low))
        return np.clip((self._untruncated_cdf(x) - lo) / self.normalization, 0.0, 1.0)

    def ppf(self, u: np.ndarray, *, iterations: int = 80) -> np.ndarray:
        """Inverse CDF by vectorised bisection on [low, high] (80 halvings: below float resolution)."""
        u = np.asarray(u, dtype=float)
        lo = np.full(u.shape, self.low)
        hi = np.full(u.shape, self.high)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < u
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    # ----- sampling and quantiles ----------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` exact draws: component by weight, Gaussian draw, rejection of draws outside [low, high]."""
        out: list[np.ndarray] = []
        have = 0
        while have < n:
            want = max(n - have, 16)
            batch = int(want / self.normalization * 1.05) + 16
            comp = rng.choice(len(self._w), size=batch, p=self._w)
            x = rng.normal(self._mu[comp], self._sd[comp])
            x = x[(x >= self.low) & (x <= self.high)]
            out.append(x)
            have += x.size
        return np.concatenate(out)[:n]

    def quantile_edges(self, n_quantiles: int) -> np.ndarray:
        """`n_quantiles + 1` edges from `low` to `high`; each interval holds truth probability 1/n_quantiles."""
        if n_quantiles < 1:
            raise ValueError("n_quantiles must be >= 1")
        inner = self.ppf(np.arange(1, n_quantiles) / n_quantiles)
        return np.concatenate([[self.low], inner, [self.high]])

    def quantile_probabilities(self, edges: np.ndarray) -> np.ndarray:
        """This model's exact probability of each interval (outer intervals open-ended, see `metrics`)."""
        inner = self.cdf(np.asarray(edges, dtype=float)[1:-1])
        return np.diff(np.concatenate([[0.0], inner, [1.0]]))


def camel_back(low: float = -8.0, high: float = 8.0) -> GaussianMixture:
    """The paper's truth: ½ N(−4, 1) + ½ N(4, 1) on [−8, 8]."""
    return GaussianMixture(weights=(0.5, 0.5), means=(-4.0, 4.0), sigmas=(1.0, 1.0), low=low, high=high)
