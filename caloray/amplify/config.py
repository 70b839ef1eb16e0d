"""`AmplificationConfig`: the typed settings of the amplification study, loaded from YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from caloray.amplify.generator import FlowConfig
from caloray.amplify.truth import GaussianMixture
from caloray.config import load_yaml
from caloray.errors import ConfigError

MODELS = ("sample", "fit", "flow", "ensemble", "resample")


@dataclass
class TruthConfig:
    """The truth mixture (default: the camel back ½N(−4,1) + ½N(4,1) on [−8, 8])."""

    weights: list[float] = field(default_factory=lambda: [0.5, 0.5])
    means: list[float] = field(default_factory=lambda: [-4.0, 4.0])
    sigmas: list[float] = field(default_factory=lambda: [1.0, 1.0])
    low: float = -8.0
    high: float = 8.0

    def model(self) -> GaussianMixture:
        return GaussianMixture(tuple(self.weights), tuple(self.means), tuple(self.sigmas), self.low, self.high)


@dataclass
class AmplificationConfig:
    """Amplification study (paper Fig. 2): `repetitions` independent training samples of `n_train` events.

    `models`: "sample" (the training events themselves), "fit" (5-parameter fit), "flow" (one flow:
    member 0 of the ensemble), "ensemble" (`ensemble_members` flows, equal shares), "resample" (bootstrap
    of the training events, amplification ≈ 1 by construction).
    """

    seed: int = 20261123
    repetitions: int = 10
    n_train: int = 100
    n_quantiles: list[int] = field(default_factory=lambda: [10, 20, 50])
    generated_sizes: list[int] = field(default_factory=lambda: [100, 300, 1_000, 3_000, 10_000, 30_000, 100_000,
                                                               300_000])
    ensemble_members: int = 10
    models: list[str] = field(default_factory=lambda: ["sample", "fit", "flow", "ensemble"])
    truth: TruthConfig = field(default_factory=TruthConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    use_ray: bool = True
    torch_threads: int = 1
    tracking_uri: str | None = None
    experiment: str = "caloray-amplification"

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise ConfigError(f"amplification: unknown model(s) {unknown}; choose from {list(MODELS)}")
        if self.repetitions < 1 or self.n_train < 5 or self.ensemble_members < 1:
            raise ConfigError("amplification: need repetitions ≥ 1, n_train ≥ 5, ensemble_members ≥ 1")
        if not self.n_quantiles or min(self.n_quantiles) < 2:
            raise ConfigError("amplification: n_quantiles must be a non-empty list of integers ≥ 2")
        if len(self.generated_sizes) < 2 or min(self.generated_sizes) < 1:
            raise ConfigError("amplification: generated_sizes needs at least two positive sizes")
        self.generated_sizes = sorted(int(s) for s in self.generated_sizes)


def load_amplification_config(path: str | Path) -> AmplificationConfig:
    """Load an `AmplificationConfig` from YAML (unknown keys rejected with a suggestion)."""
    return load_yaml(AmplificationConfig, path)
