"""Readout layers: cylindrical (r, α) bins as in CaloChallenge, or Cartesian (φ × η) cells."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Material:
    """Depth and response of one readout layer, used by the simulator.

    `thickness_x0` in radiation lengths, `thickness_lambda` in nuclear interaction lengths,
    `sampling_fraction` the visible fraction of deposited energy (files store energy divided by it),
    `moliere_radius_mm` the Molière radius of the absorber mix.
    """

    thickness_x0: float
    thickness_lambda: float
    sampling_fraction: float
    moliere_radius_mm: float


@dataclass(frozen=True)
class CylindricalLayer:
    """A layer binned in radius (edges in mm) and in α (equal bins over [−π, π)).

    Cell order within the layer: radial bins fastest, then α (the CaloChallenge voxel order).
    """

    id: int
    r_edges_mm: tuple[float, ...]
    n_alpha: int
    material: Material | None = field(default=None, compare=False)

    @property
    def n_r(self) -> int:
        return max(len(self.r_edges_mm) - 1, 0)

    @property
    def n_cells(self) -> int:
        return self.n_r * self.n_alpha

    @property
    def alpha_edges(self) -> np.ndarray:
        """α bin edges in radians, shape (n_alpha + 1,)."""
        return np.linspace(-np.pi, np.pi, self.n_alpha + 1)

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(r_mm, α_rad) of each cell's centre, each of shape (n_cells,), in cell order."""
        edges = np.asarray(self.r_edges_mm, dtype=np.float64)
        r_mid = 0.5 * (edges[1:] + edges[:-1])
        a_edges = self.alpha_edges
        a_mid = 0.5 * (a_edges[1:] + a_edges[:-1])
        if self.n_alpha == 1:
            a_mid = np.zeros(1)
        return np.tile(r_mid, self.n_alpha), np.repeat(a_mid, self.n_r)

    def cell_of(self, r_mm: np.ndarray, alpha_rad: np.ndarray) -> np.ndarray:
        """Cell index for points at (r, α); −1 outside the outermost radial edge."""
        edges = np.asarray(self.r_edges_mm, dtype=np.float64)
        r_bin = np.searchsorted(edges, r_mm, side="right") - 1
        a = np.mod(alpha_rad + np.pi, 2 * np.pi)
        a_bin = np.minimum((a / (2 * np.pi) * self.n_alpha).astype(np.int64), self.n_alpha - 1)
        cell = a_bin * self.n_r + r_bin
        return np.where((r_bin >= 0) & (r_bin < self.n_r), cell, -1)


@dataclass(frozen=True)
class CartesianLayer:
    """A layer of n_phi × n_eta rectangular cells centred on the shower axis.

    Cell order within the layer: η fastest, then φ (`cells.reshape(n_phi, n_eta)`).
    Positions are in mm across the face of the layer (η along x, φ along y).
    """

    id: int
    n_phi: int
    n_eta: int
    phi_cell_mm: float
    eta_cell_mm: float
    z_length_mm: float
    material: Material | None = field(default=None, compare=False)

    @property
    def n_cells(self) -> int:
        return self.n_phi * self.n_eta

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(η_mm, φ_mm) of each cell's centre, each of shape (n_cells,), in cell order."""
        eta = (np.arange(self.n_eta) + 0.5 - self.n_eta / 2) * self.eta_cell_mm
        phi = (np.arange(self.n_phi) + 0.5 - self.n_phi / 2) * self.phi_cell_mm
        return np.tile(eta, self.n_phi), np.repeat(phi, self.n_eta)

    def cell_of(self, eta_mm: np.ndarray, phi_mm: np.ndarray) -> np.ndarray:
        """Cell index for points at (η, φ) in mm; −1 outside the layer's face."""
        i_eta = np.floor(eta_mm / self.eta_cell_mm + self.n_eta / 2).astype(np.int64)
        i_phi = np.floor(phi_mm / self.phi_cell_mm + self.n_phi / 2).astype(np.int64)
        inside = (i_eta >= 0) & (i_eta < self.n_eta) & (i_phi >= 0) & (i_phi < self.n_phi)
        return np.where(inside, i_phi * self.n_eta + i_eta, -1)


Layer = CylindricalLayer | CartesianLayer
