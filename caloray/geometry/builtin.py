"""Caloray's own definitions of the built-in geometries.

Written from the facts in the data spec (CaloChallenge 2022 datasets 1–3 and the 6-layer ECAL+HCAL
calorimeter of the MLE-calibration paper); tests check them against the official binning XMLs.
Materials are the simulator's effective depths and responses, not part of the XML.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from caloray.errors import GeometryError
from caloray.geometry.geometry import Geometry
from caloray.geometry.layer import CartesianLayer, CylindricalLayer, Material

# ATLAS-like LAr/Pb ECAL and Fe/scintillator tile HCAL (dataset 1).
_DS1_ECAL = {  # layer id → (X0, λ)
    0: (2.0, 0.10),
    1: (4.5, 0.21),
    2: (16.0, 0.75),
    3: (2.0, 0.10),
}
_DS1_HCAL = {12: 1.5, 13: 4.1, 14: 1.8}  # layer id → λ
_DS1_EMPTY_PHOTONS = tuple(i for i in range(24) if i not in (0, 1, 2, 3, 12))
_DS1_EMPTY_PIONS = tuple(i for i in range(24) if i not in (0, 1, 2, 3, 12, 13, 14))


def _ds1_material(layer_id: int) -> Material:
    if layer_id in _DS1_ECAL:
        x0, lam = _DS1_ECAL[layer_id]
        return Material(x0, lam, sampling_fraction=0.2, moliere_radius_mm=40.0)
    lam = _DS1_HCAL[layer_id]
    return Material(lam * 168.0 / 17.6, lam, sampling_fraction=0.03, moliere_radius_mm=60.0)


def _cyl(layer_id: int, r_edges: str, n_alpha: int, material: Material) -> CylindricalLayer:
    return CylindricalLayer(layer_id, tuple(float(v) for v in r_edges.split(",")), n_alpha, material)


def ds1_photons() -> Geometry:
    """Dataset 1, photons: 5 non-empty layers, 368 voxels."""
    spec = {
        0: ("0,5,10,30,50,100,200,400,600", 1),
        1: ("0,2,4,6,8,10,12,15,20,30,40,50,70,90,120,150,200", 10),
        2: ("0,2,5,10,15,20,25,30,40,50,60,80,100,130,160,200,250,300,350,400", 10),
        3: ("0,50,100,200,400,600", 1),
        12: ("0,100,200,400,1000,2000", 1),
    }
    layers = tuple(_cyl(i, e, a, _ds1_material(i)) for i, (e, a) in spec.items())
    return Geometry("ds1-photons", "cylindrical", "photon", 22, layers, _DS1_EMPTY_PHOTONS)


def ds1_pions() -> Geometry:
    """Dataset 1, charged pions: 7 non-empty layers, 533 voxels."""
    wide = "0,10,20,30,50,80,100,130,160,200,250,300,350,400"
    spec = {
        0: ("0,5,10,30,50,100,200,400,600", 1),
        1: ("0,1,4,7,10,15,30,50,90,150,200", 10),
        2: ("0,5,10,20,30,50,80,130,200,300,400", 10),
        3: ("0,50,100,200,400,600", 1),
        12: (wide + ",1000,2000", 10),
        13: (wide + ",600,1000,2000", 10),
        14: ("0,50,100,150,200,250,300,400,600,1000,2000", 1),
    }
    layers = tuple(_cyl(i, e, a, _ds1_material(i)) for i, (e, a) in spec.items())
    return Geometry("ds1-pions", "cylindrical", "pion", 211, layers, _DS1_EMPTY_PIONS)


def _silicon_tungsten(name: str, n_r: int, dr_mm: float, n_alpha: int) -> Geometry:
    # One readout layer = 2 × (1.4 mm W + 0.3 mm Si) = 3.4 mm ≈ 0.8 X0; W has λ_int ≈ 99 mm.
    material = Material(thickness_x0=0.8, thickness_lambda=2.8 / 99.0, sampling_fraction=0.033,
                        moliere_radius_mm=11.0)
    edges = tuple(float(round(v, 6)) for v in np.arange(n_r + 1) * dr_mm)
    layers = tuple(CylindricalLayer(i, edges, n_alpha, material) for i in range(45))
    return Geometry(name, "cylindrical", "electron", 11, layers,
                    attributes={"readout_threshold_mev": "0.01515"})


def ds2() -> Geometry:
    """Dataset 2: 45 layers × 16 α × 9 r (Δr = 4.65 mm) = 6480 voxels."""
    return _silicon_tungsten("ds2", 9, 4.65, 16)


def ds3() -> Geometry:
    """Dataset 3: 45 layers × 50 α × 18 r (Δr = 2.325 mm) = 40500 voxels."""
    return _silicon_tungsten("ds3", 18, 2.325, 50)


# ECAL LAr/Pb (X0 ≈ 21 mm, λ ≈ 400 mm) and HCAL LAr/W (λ ≈ 150 mm), MLE-calibration paper Table I.
_ECAL_HCAL = (  # (n_phi, n_eta, φ cell mm, η cell mm, z mm, section)
    (3, 96, 160.0, 5.0, 90.0, "ecal"),
    (12, 12, 40.0, 40.0, 347.0, "ecal"),
    (12, 6, 40.0, 80.0, 43.0, "ecal"),
    (3, 96, 2000.0 / 3, 2000.0 / 96, 375.0, "hcal"),
    (12, 12, 2000.0 / 12, 2000.0 / 12, 667.0, "hcal"),
    (12, 6, 2000.0 / 12, 2000.0 / 6, 958.0, "hcal"),
)


#: Per-cell readout threshold of the ECAL+HCAL on the stored (sampling-fraction-corrected) scale, MeV: the
#: CaloChallenge ds2/ds3 value. Without it the Gamma sampling term leaves cells with sub-keV, even denormal-size
#: deposits (a simulator artifact: ~10% of showers had a last HCAL layer in (0, 10 keV)) that no readout sees,
#: and a Flow-I trained on dequantized layer energies cannot tell those from an empty layer. It removes ~1e-4
#: of a shower's energy at most. Not a LAr noise model (electronic noise is MeV-scale per cell).
ECAL_HCAL_THRESHOLD_MEV = 0.01515


def ecal_hcal() -> Geometry:
    """The 6-layer ECAL+HCAL of the calibration paper: Cartesian φ × η cells, 1008 voxels, readout threshold
    `ECAL_HCAL_THRESHOLD_MEV` per cell.

    Cell order within a layer: η fastest, then φ (`layer.reshape(n_phi, n_eta)`).
    """
    layers = []
    for i, (n_phi, n_eta, dphi, deta, z_mm, section) in enumerate(_ECAL_HCAL):
        if section == "ecal":
            material = Material(z_mm / 21.0, z_mm / 400.0, sampling_fraction=0.20, moliere_radius_mm=35.0)
        else:
            material = Material(z_mm / 6.0, z_mm / 150.0, sampling_fraction=0.013, moliere_radius_mm=25.0)
        layers.append(CartesianLayer(i, n_phi, n_eta, dphi, deta, z_mm, material))
    return Geometry("ecal-hcal", "cartesian", "pion", 211, tuple(layers),
                    attributes={"readout_threshold_mev": str(ECAL_HCAL_THRESHOLD_MEV)})


BUILTIN: dict[str, Callable[[], Geometry]] = {
    "ds1-photons": ds1_photons,
    "ds1-pions": ds1_pions,
    "ds2": ds2,
    "ds3": ds3,
    "ecal-hcal": ecal_hcal,
}

# Coarse voxelizations of dataset 2 used for super-resolution: (r, α, layer) group sizes.
DS2_COARSE_CHOICES: dict[str, tuple[int, int, int]] = {"A": (1, 2, 5), "B": (3, 4, 1)}

_CACHE: dict[str, Geometry] = {}


def get_geometry(name: str) -> Geometry:
    """The built-in geometry called `name` (cached); unknown names list the valid ones."""
    if name not in BUILTIN:
        raise GeometryError(f"unknown geometry {name!r}; built-in geometries: {', '.join(BUILTIN)}")
    if name not in _CACHE:
        _CACHE[name] = BUILTIN[name]()
    return _CACHE[name]
