"""caloray's built-in, physics-parametrized calorimeter shower simulator (not Geant4).

Fast, vectorized numpy showers for demos, tests and benchmarks, written as CaloChallenge HDF5 shards
tagged `generator = "caloray.sim"` with their full configuration. Model, per shower:

- EM (γ, e±): Gamma longitudinal profile in X0 with median t_max = ln(E/E_c) + C (C = −0.5 γ, −1.0 e,
  E_c = 8 MeV) and median α = 0.21 + 0.52 ln(E/E_c); correlated lognormal fluctuations of (t_max, α)
  (GFlash-like widths; β ≥ 0.3/X0); lateral f(r) = p·2rR_C²/(r²+R_C²)² + (1−p)·2rR_T²/(r²+R_T²)²
  with R_C = 0.05 + 0.10τ, R_T = 0.40 + 0.10τ (Molière units, τ = t/t_max ≤ 3) and p = 0.85 falling
  by 0.2 per t_max after the maximum (≥ 0.4).
- π±: MIP track (200 MeV/λ) to an Exponential(1 λ) first interaction; f_em = min(1, s·Gamma(4)) with s
  solved so ⟨f_em⟩ = 1 − (E/1 GeV)^(0.82−1) exactly (positive skew → high tail of E_dep/E_inc);
  hadronic part visible with a fraction v of mean h/e = 0.6 and right-skewed ln v (σ/√κ · Gamma(κ) + const,
  κ = 0.5, σ = 0.2/sqrt(E_had/GeV); κ = 0 gives v ~ Beta instead), Gamma profile in λ with
  t_max = 0.7 + 0.2 ln(E/GeV) after the first interaction, lateral radii (0.10 + 0.05τ, 0.30 + 0.15τ) λ
  with core fraction 0.5 (λ in mm from the layer's z length; 4 R_M where a layer has no z length). The
  EM part is a photon-like EM shower starting at the first interaction; f_em applies to the energy left
  after the MIP track.
- Spots: 200 per GeV (≥ 8 per component), capped at max(2000, 2 × n_voxels) per shower, energy/count
  each; binned into voxels; sampling fluctuations Gamma-distributed with σ/E = a/sqrt(E/GeV),
  a = 0.033·sqrt((1 − f_s)/f_s) per layer; energies divided by the sampling fraction f_s (EM response ≈ 1);
  readout threshold from the geometry (15.15 keV per cell for ds2/ds3 and ecal-hcal).

Determinism: shard i of a config uses `np.random.default_rng([seed, i])`; the same config gives the same
bytes on any machine and worker order (results also depend on the chunk limits, which are part of
`Physics` and so of the stored config).

Public API: `SimConfig` (+ `SimConfig.preset(geometry)`), `Physics`, `simulate_batch`, `simulate_shard`,
`simulate_showers`, `simulate_to_files`, `run_shards`, `write_shard`, `sample_incident_energies`,
`em_fraction_mean`.
"""

from caloray.sim.config import PARTICLES, PRIORS, Physics, SimConfig
from caloray.sim.hadronic import em_fraction_mean
from caloray.sim.priors import DS1_LADDER_MEV, sample_incident_energies
from caloray.sim.run import GENERATOR, ShardResult, run_shards, simulate_to_files, write_shard
from caloray.sim.shower import simulate_batch, simulate_shard, simulate_showers

__all__ = [
    "DS1_LADDER_MEV",
    "GENERATOR",
    "PARTICLES",
    "PRIORS",
    "Physics",
    "ShardResult",
    "SimConfig",
    "em_fraction_mean",
    "run_shards",
    "sample_incident_energies",
    "simulate_batch",
    "simulate_shard",
    "simulate_showers",
    "simulate_to_files",
    "write_shard",
]
