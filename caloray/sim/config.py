"""Simulator configuration: what to simulate (`SimConfig`) and the physics parameters (`Physics`).

All energies are in MeV unless a name says otherwise (`*_gev`). Depths are in radiation lengths (X0)
for electromagnetic quantities and in nuclear interaction lengths (λ) for hadronic ones; lateral radii
are in units of the local layer's Molière radius (R_M). The defaults are documented in
`caloray/sim/__init__.py`; every written file stores the full config as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from caloray.errors import ConfigError
from caloray.geometry import Geometry, get_geometry

PARTICLES = ("photon", "electron", "pion")
PRIORS = ("fixed", "uniform", "log-uniform", "ds1-ladder")


@dataclass(frozen=True)
class Physics:
    """Parameters of the parametrized showers (see the package docstring for their meaning)."""

    # Electromagnetic longitudinal profile: Gamma(α, β) in depth t [X0], t_max = ln(E/E_c) + C.
    critical_energy_mev: float = 8.0
    t_max_offset_photon: float = -0.5
    t_max_offset_electron: float = -1.0
    alpha_intercept: float = 0.21  # median α = alpha_intercept + alpha_slope · ln(E/E_c)
    alpha_slope: float = 0.52
    # Shower-by-shower fluctuations: (ln t_max, ln α) bivariate normal, σ = 1 / (a + b ln y), ρ = c + d ln y.
    sigma_ln_tmax: tuple[float, float] = (-1.4, 1.26)
    sigma_ln_alpha: tuple[float, float] = (-0.58, 0.86)
    rho_tmax_alpha: tuple[float, float] = (0.705, -0.023)
    # Electromagnetic lateral profile (radii in R_M, τ = t / t_max).
    core_radius: tuple[float, float] = (0.05, 0.10)  # R_C = a + b τ
    tail_radius: tuple[float, float] = (0.40, 0.10)  # R_T = a + b τ
    core_fraction: tuple[float, float, float] = (0.85, 0.20, 0.4)  # p = max(a − b·max(τ − 1, 0), c)
    # Hadronic showers (π±).
    em_fraction_e0_gev: float = 1.0  # ⟨f_em⟩ = 1 − (E / E_0)^(k − 1)
    em_fraction_k: float = 0.82
    em_fraction_gamma_shape: float = 4.0  # f_em = min(1, s · Gamma(κ)), s solved so the mean is exact
    h_over_e: float = 0.6  # mean visible fraction of the hadronic (non-EM) energy
    invisible_sigma: float = 0.2  # sd of the visible fraction = invisible_sigma / sqrt(E_had / GeV)
    # ln v = σ/√κ · G + const, G ~ Gamma(κ), mean h/e: skewness 2/√κ of ln v (0: a Beta instead, no skew).
    # The right-skewed ln v lengthens the likelihood's low-energy side, as the calibration paper sees on
    # Geant4 pions (Δ_L/Δ_U > 1 for most showers). Measured with the calibration study's 3-member Flow-I
    # ensembles (40k showers, 16 epochs): κ = 0.5, σ = 0.2 gives 53–72% of showers above 1 at every E_true in
    # 10…90 GeV for both priors; the earlier default (κ = 0, a Beta; σ = 0.15) gives 38–50%.
    invisible_skew_shape: float = 0.5
    hadron_tmax_lambda: tuple[float, float] = (0.7, 0.2)  # t_max [λ] = a + b ln(E / GeV), after t_0
    hadron_beta_per_lambda: float = 0.9  # Gamma rate; α_h = 1 + β_h · t_max
    hadron_sigma_ln_alpha: float = 0.2
    # Hadronic lateral radii in interaction lengths (λ in mm of the layer), τ_h = (t − t_0) / t_max.
    hadron_core_radius: tuple[float, float] = (0.10, 0.05)
    hadron_tail_radius: tuple[float, float] = (0.30, 0.15)
    hadron_core_fraction: float = 0.5
    hadron_lambda_per_moliere: float = 4.0  # λ [mm] ≈ this × R_M where a layer's thickness in mm is unknown
    mip_mev_per_lambda: float = 200.0  # ionisation of the pion before its first interaction
    # Sampling fluctuations: per-layer stochastic term a = sampling_coeff · sqrt((1 − f_s) / f_s) [√GeV].
    sampling_coeff: float = 0.033
    # Discrete spots: count = spots_per_gev · E [GeV], at least min_spots per component, capped per
    # shower at max(spot_cap_min, spot_cap_per_voxel · n_voxels).
    spots_per_gev: float = 200.0
    min_spots: int = 8
    spot_cap_min: int = 2000
    spot_cap_per_voxel: float = 2.0
    # Memory bounds of one chunk of showers processed at once.
    max_spots_per_chunk: int = 400_000
    max_cells_per_chunk: int = 2_000_000


#: Default number of shards a run is cut into: two per worker for up to 8 workers, so a small run still keeps
#: every worker busy and the last shard does not run alone. A constant, not the cluster's size: shard i is
#: seeded by (seed, i), so the showers written must not depend on where they are simulated.
DEFAULT_SHARDS = 16
#: Fewest showers per default shard, so a task's work hides Ray's per-task scheduling gaps (0.1–0.2 s
#: between tasks measured on 2 cores).
MIN_SHARD_SHOWERS = 250
#: Most bytes of float32 showers per default shard (a worker holds one shard at a time).
MAX_SHARD_BYTES = 128 << 20


def default_shard_size(n_showers: int, n_voxels: int) -> int:
    """Showers per shard when none is set: ceil(n_showers / DEFAULT_SHARDS), at least MIN_SHARD_SHOWERS,
    at most MAX_SHARD_BYTES of float32 voxels (and ≥ 1)."""
    cap = max(1, MAX_SHARD_BYTES // (4 * n_voxels))
    return int(max(1, min(cap, max(MIN_SHARD_SHOWERS, -(-n_showers // DEFAULT_SHARDS)))))


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. `particle=None` → the geometry's particle; `threshold_mev=None` → the geometry's
    `readout_threshold_mev` attribute (0 when absent); `shard_size=None` → `default_shard_size` (up to
    DEFAULT_SHARDS shards of ≥ MIN_SHARD_SHOWERS showers, ≤ 128 MiB of float32 each)."""

    geometry: str = "ds2"
    particle: str | None = None
    prior: str = "log-uniform"
    energy_min_mev: float = 1_000.0
    energy_max_mev: float = 1_000_000.0
    energies_mev: tuple[float, ...] = ()
    n_showers: int = 10_000
    shard_size: int | None = None
    seed: int = 0
    threshold_mev: float | None = None
    physics: Physics = field(default_factory=Physics)

    def __post_init__(self) -> None:
        get_geometry(self.geometry)  # raises GeometryError for unknown names
        if self.particle is not None and self.particle not in PARTICLES:
            raise ConfigError(f"sim.particle: {self.particle!r} is not one of {PARTICLES}")
        if self.prior not in PRIORS:
            raise ConfigError(f"sim.prior: {self.prior!r} is not one of {PRIORS}")
        if self.prior == "fixed" and not self.energies_mev:
            raise ConfigError("sim.energies_mev: the 'fixed' prior needs at least one energy")
        if self.prior in ("uniform", "log-uniform") and not 0 < self.energy_min_mev < self.energy_max_mev:
            got = (self.energy_min_mev, self.energy_max_mev)
            raise ConfigError(f"sim: need 0 < energy_min_mev < energy_max_mev, got {got}")
        if any(not (e > 0 and math.isfinite(e)) for e in self.energies_mev):
            bad = self.energies_mev
            raise ConfigError(f"sim.energies_mev: energies must be positive and finite, got {bad}")
        if self.n_showers < 0:
            raise ConfigError(f"sim.n_showers: must be ≥ 0, got {self.n_showers}")
        if self.shard_size is not None and self.shard_size < 1:
            raise ConfigError(f"sim.shard_size: must be ≥ 1, got {self.shard_size}")
        if self.seed < 0:
            raise ConfigError(f"sim.seed: must be ≥ 0, got {self.seed}")

    @classmethod
    def preset(cls, geometry: str, **overrides: Any) -> SimConfig:
        """Dataset-like defaults for a built-in geometry: ds1-* → the powers-of-two ladder, ds2/ds3 →
        log-uniform 1 GeV–1 TeV, ecal-hcal → uniform 1–100 GeV (π+ as in the calibration paper)."""
        defaults: dict[str, Any] = {"geometry": geometry}
        if geometry.startswith("ds1"):
            defaults["prior"] = "ds1-ladder"
        elif geometry == "ecal-hcal":
            defaults.update(prior="uniform", energy_min_mev=1_000.0, energy_max_mev=100_000.0)
        return cls(**{**defaults, **overrides})

    # ----- resolved values ---------------------------------------------------------------------
    @property
    def geometry_obj(self) -> Geometry:
        return get_geometry(self.geometry)

    @property
    def resolved_particle(self) -> str:
        particle = self.particle or self.geometry_obj.particle
        if particle not in PARTICLES:
            raise ConfigError(
                f"sim.particle: geometry {self.geometry!r} has particle {particle!r}; set one of {PARTICLES}"
            )
        return particle

    @property
    def resolved_threshold_mev(self) -> float:
        if self.threshold_mev is not None:
            return float(self.threshold_mev)
        return float(self.geometry_obj.attributes.get("readout_threshold_mev", 0.0))

    @property
    def resolved_shard_size(self) -> int:
        """`shard_size`, or `default_shard_size(n_showers, n_voxels)`."""
        if self.shard_size is not None:
            return self.shard_size
        return default_shard_size(self.n_showers, self.geometry_obj.n_voxels)

    @property
    def n_shards(self) -> int:
        return -(-self.n_showers // self.resolved_shard_size)

    def shard_range(self, shard_index: int) -> tuple[int, int]:
        """Global shower indices [start, stop) of one shard."""
        if not 0 <= shard_index < max(self.n_shards, 1):
            raise ConfigError(f"shard index {shard_index} out of range 0…{self.n_shards - 1}")
        start = shard_index * self.resolved_shard_size
        return start, min(start + self.resolved_shard_size, self.n_showers)

    def to_json(self) -> str:
        """The config as a JSON string (sorted keys), stored in every file the simulator writes."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SimConfig:
        """Inverse of `to_json`."""
        from caloray.config import from_dict

        data: dict[str, Any] = json.loads(text)
        return from_dict(cls, data, where="sim")
