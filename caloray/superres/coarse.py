"""Coarse graining of a regular cylindrical calorimeter: index tables and coarse energies.

Fine voxels are numbered (layer · n_α + α) · n_r + r (r fastest), as in `caloray.geometry` and the
CaloChallenge files. A coarse voxel groups `r_group` × `alpha_group` × `layer_group` fine voxels; coarse
voxels are numbered the same way on the coarse grid (r fastest, then α, then layer), exactly as
`Geometry.coarse_map`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from caloray.geometry import DS2_COARSE_CHOICES, Geometry

#: Column order of the neighbour table.
NEIGHBOUR_DIRECTIONS: tuple[str, ...] = ("r-1", "r+1", "alpha-1", "alpha+1", "z-1", "z+1")


@dataclass(frozen=True)
class CoarseGrid:
    """A regular (n_layers × n_alpha × n_r) fine grid and its (r, α, layer) grouping into coarse voxels."""

    n_layers: int
    n_alpha: int
    n_r: int
    r_group: int
    alpha_group: int
    layer_group: int

    def __post_init__(self) -> None:
        for what, n, g in (("r", self.n_r, self.r_group), ("alpha", self.n_alpha, self.alpha_group),
                           ("layer", self.n_layers, self.layer_group)):
            if n < 1 or g < 1 or n % g:
                raise ValueError(f"CoarseGrid: {what} group {g} does not divide {n} fine bins")

    @classmethod
    def from_geometry(cls, geometry: Geometry, choice: str | Sequence[int]) -> CoarseGrid:
        """Grid of a regular cylindrical `geometry`; `choice` is "A"/"B" (ds2) or (r, α, layer) group sizes."""
        groups = DS2_COARSE_CHOICES[choice] if isinstance(choice, str) else tuple(int(g) for g in choice)
        if geometry.kind != "cylindrical" or not geometry.is_regular:
            raise ValueError(f"geometry {geometry.name!r} is not a regular cylindrical geometry")
        first = geometry.layers[0]
        grid = cls(geometry.n_layers, first.n_alpha, first.n_r, *groups)
        if not np.array_equal(grid.coarse_of_fine, geometry.coarse_map(*groups)):
            raise ValueError(f"geometry {geometry.name!r}: voxel order is not (layer, α, r) with r fastest")
        return grid

    @property
    def groups(self) -> tuple[int, int, int]:
        """(r_group, alpha_group, layer_group), the `Geometry.coarse_map` argument order."""
        return (self.r_group, self.alpha_group, self.layer_group)

    # ----- sizes -----------------------------------------------------------------------------------
    @property
    def n_voxels(self) -> int:
        return self.n_layers * self.n_alpha * self.n_r

    @property
    def coarse_shape(self) -> tuple[int, int, int]:
        """(coarse layers, coarse α bins, coarse r bins)."""
        return (self.n_layers // self.layer_group, self.n_alpha // self.alpha_group, self.n_r // self.r_group)

    @property
    def n_coarse(self) -> int:
        n_l, n_a, n_r = self.coarse_shape
        return n_l * n_a * n_r

    @property
    def group_size(self) -> int:
        """Fine voxels per coarse voxel."""
        return self.r_group * self.alpha_group * self.layer_group

    # ----- fine → coarse ---------------------------------------------------------------------------
    @cached_property
    def fine_coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(layer, α, r) bin of every fine voxel, each (n_voxels,)."""
        v = np.arange(self.n_voxels)
        return v // (self.n_alpha * self.n_r), (v // self.n_r) % self.n_alpha, v % self.n_r

    @cached_property
    def coarse_of_fine(self) -> np.ndarray:
        """Coarse voxel of each fine voxel, (n_voxels,) int64."""
        layer, alpha, r = self.fine_coordinates
        _, n_a, n_r = self.coarse_shape
        return ((layer // self.layer_group) * n_a + alpha // self.alpha_group) * n_r + r // self.r_group

    @cached_property
    def fine_of_coarse(self) -> np.ndarray:
        """Fine voxels of each coarse voxel, (n_coarse, group_size) int64, in ascending fine index.

        Ascending fine index means (fine layer, α, r) lexicographic with r fastest; for choice A
        (1 r × 2 α × 5 z) the 10 entries are [layer0 α0, layer0 α1, layer1 α0, …, layer4 α1].
        """
        order = np.argsort(self.coarse_of_fine, kind="stable")
        return order.reshape(self.n_coarse, self.group_size)

    # ----- coarse coordinates ----------------------------------------------------------------------
    @cached_property
    def coarse_coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(coarse layer, coarse α, coarse r) of every coarse voxel, each (n_coarse,)."""
        _, n_a, n_r = self.coarse_shape
        c = np.arange(self.n_coarse)
        return c // (n_a * n_r), (c // n_r) % n_a, c % n_r

    @cached_property
    def spanned_layers(self) -> np.ndarray:
        """Fine layers spanned by each coarse voxel, (n_coarse, layer_group), ascending."""
        layer, _, _ = self.coarse_coordinates
        return layer[:, None] * self.layer_group + np.arange(self.layer_group)

    @cached_property
    def neighbours(self) -> np.ndarray:
        """Neighbour coarse voxels, (n_coarse, 6) int64, columns `NEIGHBOUR_DIRECTIONS`.

        −1 where the neighbour is outside the calorimeter (r < 0, r ≥ n_r, layer < 0, layer ≥ n_layers).
        α is periodic and wraps around; with a single coarse α bin there is no α neighbour (−1).
        """
        n_l, n_a, n_r = self.coarse_shape
        layer, alpha, r = self.coarse_coordinates

        def index(lay: np.ndarray, a: np.ndarray, rr: np.ndarray, inside: np.ndarray) -> np.ndarray:
            return np.where(inside, (lay * n_a + a % n_a) * n_r + rr, -1)

        everywhere = np.full(self.n_coarse, True)
        has_alpha = everywhere & (n_a > 1)
        columns = [
            index(layer, alpha, r - 1, r - 1 >= 0),
            index(layer, alpha, r + 1, r + 1 < n_r),
            index(layer, alpha - 1, r, has_alpha),
            index(layer, alpha + 1, r, has_alpha),
            index(layer - 1, alpha, r, layer - 1 >= 0),
            index(layer + 1, alpha, r, layer + 1 < n_l),
        ]
        return np.stack(columns, axis=1).astype(np.int64)


def coarse_energies(showers: Tensor, grid: CoarseGrid) -> Tensor:
    """Coarse voxel energies (B, n_coarse) MeV: the sums of their fine voxels in showers (B, n_voxels) MeV."""
    index = torch.as_tensor(grid.fine_of_coarse, device=showers.device)
    return showers[:, index].sum(-1)


def fine_groups(showers: Tensor, grid: CoarseGrid) -> Tensor:
    """Fine energies grouped by coarse voxel: showers (B, n_voxels) → (B, n_coarse, group_size)."""
    return showers[:, torch.as_tensor(grid.fine_of_coarse, device=showers.device)]


def scatter_fine_groups(groups: Tensor, grid: CoarseGrid) -> Tensor:
    """Inverse of `fine_groups`: (B, n_coarse, group_size) → showers (B, n_voxels)."""
    index = torch.as_tensor(grid.fine_of_coarse.reshape(-1), device=groups.device)
    out = groups.new_zeros(groups.shape[0], grid.n_voxels)
    out[:, index] = groups.reshape(groups.shape[0], grid.n_voxels)
    return out


def fine_layer_energies(showers: Tensor, grid: CoarseGrid) -> Tensor:
    """Energy of every fine layer, (B, n_layers) MeV, from showers (B, n_voxels) MeV."""
    return showers.reshape(showers.shape[0], grid.n_layers, -1).sum(-1)
