"""A Bayesian linear layer (Gaussian variational posterior per weight) and fixed weight draws for sampling.

The Bayesian INN of the thesis (Sec. 3.3.6, 4.2.4) makes only the last layer of each coupling subnet Bayesian:
`BayesianLinear` replaces that layer. Training uses the local reparameterization (one independent weight draw
per shower, sampled on the layer's outputs); `weight_draw` fixes one draw for a whole batch, so that sampling
with several draws gives the model's uncertainty on any generated histogram (`histogram_band`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor


class BayesianLinear(torch.nn.Module):
    """y = x Wᵀ + b with independent W_ij ~ N(μ_ij, σ_ij²), b_j ~ N(μ_j, σ_j²) and a prior N(0, σ_p²).

    Modes: in training (no fixed draw) the output is sampled with the local reparameterization, mean
    x μᵀ + μ_b and variance x² σ²ᵀ + σ_b², independently per row; with a fixed draw (`set_draw`) every row
    uses the same W = μ + σ·ε; in eval mode without a fixed draw the posterior means are used.
    Shapes: x (B, in_features) → y (B, out_features).
    """

    def __init__(self, in_features: int, out_features: int, prior_std: float = 1.0, init_log_var: float = -9.0):
        super().__init__()
        if prior_std <= 0:
            raise ValueError(f"BayesianLinear needs prior_std > 0, got {prior_std}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.prior_std = float(prior_std)
        bound = 1.0 / math.sqrt(self.in_features)  # torch.nn.Linear's default initialization of the means
        self.weight_mean = torch.nn.Parameter(torch.empty(self.out_features, self.in_features).uniform_(-bound, bound))
        self.bias_mean = torch.nn.Parameter(torch.empty(self.out_features).uniform_(-bound, bound))
        self.weight_log_var = torch.nn.Parameter(torch.full((self.out_features, self.in_features), float(init_log_var)))
        self.bias_log_var = torch.nn.Parameter(torch.full((self.out_features,), float(init_log_var)))
        self._draw: tuple[Tensor, Tensor] | None = None

    def set_draw(self, generator: torch.Generator | None) -> None:
        """Fix one weight draw ε ~ N(0, 1) from `generator` (CPU), or return to the default mode with None."""
        if generator is None:
            self._draw = None
            return
        eps_w = torch.randn(self.weight_mean.shape, generator=generator, dtype=torch.float64)
        eps_b = torch.randn(self.bias_mean.shape, generator=generator, dtype=torch.float64)
        like = self.weight_mean
        self._draw = (eps_w.to(like.dtype).to(like.device), eps_b.to(like.dtype).to(like.device))

    def fixed_weight_and_bias(self) -> tuple[Tensor, Tensor] | None:
        """(W (out, in), b (out,)) shared by every row: the fixed draw, or the posterior means in eval mode; None
        in training mode without a fixed draw (an independent draw per row)."""
        if self._draw is not None:
            eps_w, eps_b = self._draw
            weight = self.weight_mean + torch.exp(0.5 * self.weight_log_var) * eps_w
            bias = self.bias_mean + torch.exp(0.5 * self.bias_log_var) * eps_b
            return weight, bias
        if not self.training:
            return self.weight_mean, self.bias_mean
        return None

    def forward(self, x: Tensor) -> Tensor:
        fixed = self.fixed_weight_and_bias()
        if fixed is not None:
            return torch.nn.functional.linear(x, *fixed)
        mean = torch.nn.functional.linear(x, self.weight_mean, self.bias_mean)
        variance = torch.nn.functional.linear(x * x, self.weight_log_var.exp(), self.bias_log_var.exp())
        return mean + variance.sqrt() * torch.randn_like(mean)

    def kl(self) -> Tensor:
        """KL(q ‖ prior) summed over all weights and biases (nats), a scalar."""
        total = self.weight_mean.new_zeros(())
        log_prior_var = 2.0 * math.log(self.prior_std)
        for mean, log_var in ((self.weight_mean, self.weight_log_var), (self.bias_mean, self.bias_log_var)):
            total = total + 0.5 * (
                log_prior_var - log_var + (log_var.exp() + mean**2) / self.prior_std**2 - 1.0
            ).sum()
        return total

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, prior_std={self.prior_std}"


def bayesian_layers(module: torch.nn.Module) -> list[BayesianLinear]:
    """Every `BayesianLinear` inside `module`, in registration order."""
    return [m for m in module.modules() if isinstance(m, BayesianLinear)]


def kl_divergence(module: torch.nn.Module) -> Tensor:
    """Σ KL(q ‖ prior) over the Bayesian layers of `module` (0 if it has none)."""
    layers = bayesian_layers(module)
    if not layers:
        return torch.zeros(())
    return torch.stack([layer.kl() for layer in layers]).sum()


@contextmanager
def weight_draw(module: torch.nn.Module, seed: int | None) -> Iterator[None]:
    """Inside the block every Bayesian layer of `module` uses one fixed weight draw determined by `seed`
    (independent of the global RNG); `seed=None` changes nothing. The previous mode is restored after."""
    layers = bayesian_layers(module)
    if seed is None or not layers:
        yield
        return
    generator = torch.Generator().manual_seed(int(seed))
    previous = [layer._draw for layer in layers]
    for layer in layers:
        layer.set_draw(generator)
    try:
        yield
    finally:
        for layer, draw in zip(layers, previous, strict=True):
            layer._draw = draw


def histogram_band(
    values_per_draw: Sequence[np.ndarray], bins: np.ndarray, density: bool = True, per_shower: bool = False
) -> dict[str, np.ndarray]:
    """The per-bin band of a feature's histogram over weight draws.

    Args:
        values_per_draw: one 1-d array of the feature per weight draw (any units; same units as `bins`).
        bins: (K + 1,) bin edges.
        density: normalize each histogram to unit area inside the edges (else counts).
        per_shower: instead, divide the counts by the number of values, those outside the edges included, and by
            the bin width (the fraction of all showers per unit x): a draw that puts more showers outside the
            edges then shows it as a lower band, where `density` would renormalize it away.

    Returns:
        {"edges": (K + 1,), "histograms": (n_draws, K), "mean", "std", "lo", "hi": (K,) each}: mean and std over
        draws (std with ddof=1 when there are ≥ 2 draws), lo/hi the min–max envelope.
    """
    if len(values_per_draw) == 0:
        raise ValueError("histogram_band needs at least one weight draw")
    edges = np.asarray(bins, dtype=np.float64)
    if per_shower:
        histograms = np.stack([np.histogram(np.asarray(v), bins=edges)[0] / (max(np.size(v), 1) * np.diff(edges))
                               for v in values_per_draw])
    else:
        histograms = np.stack([np.histogram(np.asarray(v), bins=edges, density=density)[0]
                               for v in values_per_draw])
    ddof = 1 if len(histograms) > 1 else 0
    return {
        "edges": edges,
        "histograms": histograms,
        "mean": histograms.mean(0),
        "std": histograms.std(0, ddof=ddof),
        "lo": histograms.min(0),
        "hi": histograms.max(0),
    }


def counted_bins(band: dict[str, np.ndarray], reference: np.ndarray) -> np.ndarray:
    """(K,) bool: the bins `band_coverage` counts, those not empty in both the band and the reference."""
    return (band["hi"] > 0) | (np.asarray(reference) > 0)


def band_coverage(band: dict[str, np.ndarray], reference: np.ndarray, width: str = "std",
                  reference_std: np.ndarray | None = None) -> float:
    """Fraction of bins whose reference value lies inside the band.

    `width="std"`: mean ± std (combined in quadrature with `reference_std`, the reference's own statistical
    error per bin, when given); `width="minmax"`: the lo–hi envelope. Bins empty in the band and the
    reference are not counted.
    """
    reference = np.asarray(reference, dtype=np.float64)
    if width == "minmax":
        lo, hi = band["lo"], band["hi"]
    elif width == "std":
        sigma = band["std"] if reference_std is None else np.hypot(band["std"], reference_std)
        lo, hi = band["mean"] - sigma, band["mean"] + sigma
    else:
        raise ValueError(f"width must be 'std' or 'minmax', got {width!r}")
    used = counted_bins(band, reference)
    if not used.any():
        raise ValueError("band and reference are empty in every bin")
    inside = (reference >= lo) & (reference <= hi)
    return float(inside[used].mean())
