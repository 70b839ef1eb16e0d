"""Generators for the amplification study: a small 1-D spline flow (zuko), ensembles of flows, and resampling.

Every generator offers `sample(n, rng)` (numpy draws, deterministic given `rng`) and
`quantile_probabilities(edges)` (its exact asymptotic quantile probabilities, outer quantiles open-ended).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import numpy as np
import torch
import zuko
from scipy.special import ndtr
from zuko.transforms import MonotonicRQSTransform

_CHUNK = 1 << 18


class Generator(Protocol):
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def quantile_probabilities(self, edges: np.ndarray) -> np.ndarray: ...


@dataclass
class FlowConfig:
    """A 1-D neural spline flow (autoregressive NSF, one feature) and its training loop.

    `bound` is the spline's domain [−bound, bound]; zuko splines are the identity outside it (default 5),
    so it must cover the truth range [−8, 8]. `noise` adds uniform noise in [−noise, noise] to the training
    events, redrawn every step (as the paper does for its GAN) to curb over-fitting of 100 events.
    """

    transforms: int = 3
    bins: int = 8
    hidden_features: list[int] = field(default_factory=lambda: [32, 32])
    bound: float = 10.0
    slope: float = 1e-3
    steps: int = 600
    learning_rate: float = 1e-2
    weight_decay: float = 0.0
    batch_size: int = 0  # 0: full batch
    noise: float = 0.3


def build_flow(config: FlowConfig) -> zuko.flows.Flow:
    """Unconditional 1-D NSF with rational-quadratic splines on [−bound, bound] and a N(0, 1) base."""
    if config.bins < 2 or config.transforms < 1 or config.bound <= 0:
        raise ValueError(f"invalid flow settings {config}")
    return zuko.flows.MAF(
        features=1,
        context=0,
        transforms=config.transforms,
        univariate=partial(MonotonicRQSTransform, bound=config.bound, slope=config.slope),
        shapes=[(config.bins,), (config.bins,), (config.bins - 1,)],
        hidden_features=list(config.hidden_features),
    )


def train_flow(x: np.ndarray, config: FlowConfig, seed: int) -> tuple[zuko.flows.Flow, list[float]]:
    """Maximum-likelihood training on events `x` (Adam, cosine-annealed lr); returns (flow, loss per step).

    Deterministic for a given `seed` (torch's global RNG is forked, not disturbed).
    """
    data = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(-1, 1))
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        flow = build_flow(config)
        opt = torch.optim.Adam(flow.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(config.steps, 1))
        batch = config.batch_size if 0 < config.batch_size < len(data) else len(data)
        for _ in range(config.steps):
            xb = data[torch.randperm(len(data))[:batch]] if batch < len(data) else data
            if config.noise > 0:
                xb = xb + config.noise * (2 * torch.rand_like(xb) - 1)
            loss = -flow().log_prob(xb).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
    flow.eval()
    return flow, losses


def flow_cdf(flow: zuko.flows.Flow, x: np.ndarray) -> np.ndarray:
    """Exact CDF of a 1-D flow: Φ(T(x)) with T the (increasing) map to the standard-normal base."""
    with torch.no_grad():
        z = flow().transform(torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(-1, 1), dtype=torch.float32))
    z = z.double().numpy().ravel()
    if np.any(np.diff(z[np.argsort(np.asarray(x).ravel(), kind="stable")]) < 0):
        raise ValueError("flow transform is not increasing; Φ(T(x)) is not its CDF")
    return ndtr(z)


class FlowGenerator:
    """One trained flow as a generator."""

    def __init__(self, flow: zuko.flows.Flow):
        self.flow = flow

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if n <= 0:
            return np.empty(0)
        seed = int(rng.integers(2**63 - 1))
        parts = []
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            dist = self.flow()
            for start in range(0, n, _CHUNK):
                parts.append(dist.sample((min(_CHUNK, n - start),)).double().numpy().ravel())
        return np.concatenate(parts)

    def quantile_probabilities(self, edges: np.ndarray) -> np.ndarray:
        inner = flow_cdf(self.flow, np.asarray(edges, dtype=float)[1:-1])
        return np.diff(np.concatenate([[0.0], inner, [1.0]]))


def ensemble_shares(n: int, members: int) -> list[int]:
    """Split `n` events into `members` equal shares (the first n mod K members take one extra)."""
    if members < 1:
        raise ValueError("an ensemble needs at least one member")
    base, extra = divmod(n, members)
    return [base + (1 if k < extra else 0) for k in range(members)]


class EnsembleGenerator:
    """K generators; a sample of n events takes an equal share from each member (paper: 1/N from each GAN)."""

    def __init__(self, members: Sequence[Generator]):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        shares = ensemble_shares(n, len(self.members))
        return np.concatenate([m.sample(s, rng) for m, s in zip(self.members, shares, strict=True)])

    def quantile_probabilities(self, edges: np.ndarray) -> np.ndarray:
        """Equal-share sampling ⇒ the equal-weight mixture of the members."""
        return np.mean([m.quantile_probabilities(edges) for m in self.members], axis=0)


class ResampleGenerator:
    """Draws with replacement from a fixed set of events (its asymptotic quantile MSE is that of the set)."""

    def __init__(self, events: np.ndarray):
        self.events = np.asarray(events, dtype=float).ravel()
        if self.events.size == 0:
            raise ValueError("no events to resample")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(self.events, size=n, replace=True)

    def quantile_probabilities(self, edges: np.ndarray) -> np.ndarray:
        index = np.searchsorted(np.asarray(edges, dtype=float)[1:-1], self.events, side="right")
        return np.bincount(index, minlength=len(edges) - 1) / self.events.size
