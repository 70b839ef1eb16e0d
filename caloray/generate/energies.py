"""Incident-energy specs for generation: "log-uniform:A-B", "uniform:A-B", "fixed:E1,E2,...".

Numbers are MeV unless they carry a unit (keV, MeV, GeV, TeV), e.g. "log-uniform:1GeV-100GeV". Every spec
has a canonical MeV form (`EnergySpec.text`) that manifests and run fingerprints store, so "1GeV-100GeV" and
"1000-100000" name the same generation.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

import numpy as np

from caloray.errors import ConfigError

KINDS = ("log-uniform", "uniform", "fixed")
UNITS_MEV = {"kev": 1e-3, "mev": 1.0, "gev": 1e3, "tev": 1e6}
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_RANGE = re.compile(r"^\s*([0-9.eE+]+\s*[a-zA-Z]*)\s*-\s*([0-9.eE+]+\s*[a-zA-Z]*)\s*$")
SPEC_HELP = ('"log-uniform:A-B", "uniform:A-B" or "fixed:E1,E2,..." in MeV (or with a unit: '
             '"log-uniform:1GeV-100GeV")')


@dataclass(frozen=True)
class EnergySpec:
    """A prior over incident energies in MeV: `kind` in KINDS, a range (low, high) or fixed `values`."""

    kind: str
    low_mev: float = 0.0
    high_mev: float = 0.0
    values_mev: tuple[float, ...] = ()

    @property
    def text(self) -> str:
        """Canonical spec string in MeV (round-trips through `parse_energy_spec`)."""
        if self.kind == "fixed":
            return "fixed:" + ",".join(repr(float(v)) for v in self.values_mev)
        return f"{self.kind}:{float(self.low_mev)!r}-{float(self.high_mev)!r}"

    @property
    def range_mev(self) -> tuple[float, float]:
        """Smallest and largest energy the spec can produce (MeV)."""
        if self.kind == "fixed":
            return min(self.values_mev), max(self.values_mev)
        return self.low_mev, self.high_mev

    def sample(self, rng: np.random.Generator, n: int, start: int = 0) -> np.ndarray:
        """Energies (n,) float64 MeV for global shower indices [start, start + n).

        "fixed" cycles through the values by global index (equal shares, no randomness), so a shard's
        energies depend only on its first index; the ranges draw from `rng`.
        """
        if self.kind == "fixed":
            values = np.asarray(self.values_mev, dtype=np.float64)
            return values[(start + np.arange(n)) % len(values)]
        if self.kind == "uniform":
            return rng.uniform(self.low_mev, self.high_mev, n)
        return np.exp(rng.uniform(math.log(self.low_mev), math.log(self.high_mev), n))


def parse_energy(text: str, spec: str | None = None) -> float:
    """One energy "10GeV", "500 keV" or "2000" (MeV when no unit) → MeV; positive and finite."""
    spec = text if spec is None else spec
    match = _NUMBER.match(text)
    if not match:
        raise ConfigError(f"energies {spec!r}: {text.strip()!r} is not a number (expected {SPEC_HELP})")
    unit = match.group(2).lower() or "mev"
    if unit not in UNITS_MEV:
        raise ConfigError(f"energies {spec!r}: unknown unit {match.group(2)!r} (use keV, MeV, GeV or TeV)")
    value = float(match.group(1)) * UNITS_MEV[unit]
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"energies {spec!r}: energies must be positive and finite, got {text.strip()!r}")
    return value


def parse_energy_range(text: str, spec: str | None = None) -> tuple[float, float]:
    """An energy range "A-B" with optional units ("1GeV-100GeV"; MeV without) → (low, high) MeV, low < high."""
    spec = text if spec is None else spec
    match = _RANGE.match(text)
    if not match:
        raise ConfigError(f"energies {spec!r}: needs a range A-B with optional units, e.g. 1GeV-100GeV")
    low, high = parse_energy(match.group(1), spec), parse_energy(match.group(2), spec)
    if not low < high:
        raise ConfigError(f"energies {spec!r}: need A < B, got {low:g} MeV and {high:g} MeV")
    return low, high


def parse_energy_spec(spec: str) -> EnergySpec:
    """Parse an energy spec string; `ConfigError` says what is wrong and what is expected."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(f"energies {spec!r}: expected {SPEC_HELP}")
    kind, _, body = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, KINDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; one of {', '.join(KINDS)}"
        raise ConfigError(f"energies {spec!r}: unknown prior {kind!r}{hint}")
    if kind == "fixed":
        items = [item for item in body.split(",") if item.strip()]
        if not items:
            raise ConfigError(f"energies {spec!r}: 'fixed' needs at least one energy, e.g. fixed:10000,20000")
        return EnergySpec("fixed", values_mev=tuple(parse_energy(item, spec) for item in items))
    low, high = parse_energy_range(body, spec)
    return EnergySpec(kind, low_mev=low, high_mev=high)
