"""The `Geometry` type: layers, voxels, index maps and coarse-graining maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from caloray.errors import GeometryError
from caloray.geometry.layer import CartesianLayer, CylindricalLayer, Layer


@dataclass(frozen=True)
class Geometry:
    """A calorimeter readout: an ordered tuple of non-empty layers.

    Voxels are flattened layer by layer, each layer in its own cell order, so a shower is a vector of
    `n_voxels` energies (MeV). `empty_layer_ids` keeps the XML layer ids that have no voxels, so a
    geometry written back to XML equals the file it was read from.
    """

    name: str
    kind: Literal["cylindrical", "cartesian"]
    particle: str
    pid: int
    layers: tuple[Layer, ...]
    empty_layer_ids: tuple[int, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.layers:
            raise GeometryError(f"geometry {self.name!r}: no layer has voxels")
        ids = [layer.id for layer in self.layers] + list(self.empty_layer_ids)
        if len(set(ids)) != len(ids):
            raise GeometryError(f"geometry {self.name!r}: layer ids repeat: {sorted(ids)}")
        for layer in self.layers:
            expected = CylindricalLayer if self.kind == "cylindrical" else CartesianLayer
            if not isinstance(layer, expected):
                raise GeometryError(f"geometry {self.name!r}: layer {layer.id} is not {self.kind}")
            if layer.n_cells <= 0:
                raise GeometryError(f"geometry {self.name!r}: layer {layer.id} has no cells")
            if isinstance(layer, CylindricalLayer):
                edges = np.asarray(layer.r_edges_mm)
                if edges[0] != 0 or np.any(np.diff(edges) <= 0):
                    raise GeometryError(
                        f"geometry {self.name!r}: layer {layer.id} r_edges must start at 0 and increase,"
                        f" got {layer.r_edges_mm}"
                    )

    # ----- sizes -------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @cached_property
    def layer_sizes(self) -> np.ndarray:
        """Voxels per layer, shape (n_layers,)."""
        return np.array([layer.n_cells for layer in self.layers], dtype=np.int64)

    @cached_property
    def layer_offsets(self) -> np.ndarray:
        """First voxel of each layer, shape (n_layers + 1,) (last entry = n_voxels)."""
        return np.concatenate([[0], np.cumsum(self.layer_sizes)])

    @property
    def n_voxels(self) -> int:
        return int(self.layer_offsets[-1])

    def layer_slice(self, layer: int) -> slice:
        """Voxel slice of the layer at position `layer` (0 … n_layers − 1)."""
        return slice(int(self.layer_offsets[layer]), int(self.layer_offsets[layer + 1]))

    @property
    def is_regular(self) -> bool:
        """True when every layer has the same binning, so showers reshape to (N, L, n_α, n_r)."""
        first = self.layers[0]
        if isinstance(first, CylindricalLayer):
            return all(
                isinstance(lay, CylindricalLayer)
                and lay.r_edges_mm == first.r_edges_mm
                and lay.n_alpha == first.n_alpha
                for lay in self.layers
            )
        return False

    # ----- index maps --------------------------------------------------------------------------
    @cached_property
    def voxel_layer(self) -> np.ndarray:
        """Layer position (0 … n_layers − 1) of each voxel, shape (n_voxels,)."""
        return np.repeat(np.arange(self.n_layers), self.layer_sizes)

    @cached_property
    def voxel_cell(self) -> np.ndarray:
        """Cell index within its layer of each voxel, shape (n_voxels,)."""
        return np.arange(self.n_voxels) - self.layer_offsets[self.voxel_layer]

    def voxel_index(self, layer: np.ndarray | int, cell: np.ndarray | int) -> np.ndarray:
        """Flat voxel index of (layer position, cell within layer); raises on out-of-range input."""
        layer_arr, cell_arr = np.asarray(layer), np.asarray(cell)
        if np.any((layer_arr < 0) | (layer_arr >= self.n_layers)):
            raise GeometryError(f"geometry {self.name!r}: layer index out of range 0…{self.n_layers - 1}")
        if np.any((cell_arr < 0) | (cell_arr >= self.layer_sizes[layer_arr])):
            raise GeometryError(f"geometry {self.name!r}: cell index out of range for its layer")
        return self.layer_offsets[layer_arr] + cell_arr

    @cached_property
    def voxel_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-voxel cell centres, each (n_voxels,): (r mm, α rad) or (η mm, φ mm)."""
        parts = [layer.cell_centres() for layer in self.layers]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    @cached_property
    def voxel_xy_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-voxel transverse centre (x, y) in mm; for cylindrical x = r cos α, y = r sin α."""
        a, b = self.voxel_centres
        if self.kind == "cylindrical":
            return a * np.cos(b), a * np.sin(b)
        return a, b

    @cached_property
    def voxel_r_bin(self) -> np.ndarray:
        """Radial bin of each voxel (cylindrical only), shape (n_voxels,)."""
        self._require("cylindrical")
        n_r = np.array([lay.n_r for lay in self.layers])[self.voxel_layer]
        return self.voxel_cell % n_r

    @cached_property
    def voxel_alpha_bin(self) -> np.ndarray:
        """Angular bin of each voxel (cylindrical only), shape (n_voxels,)."""
        self._require("cylindrical")
        n_r = np.array([lay.n_r for lay in self.layers])[self.voxel_layer]
        return self.voxel_cell // n_r

    @cached_property
    def layer_depth_x0(self) -> np.ndarray:
        """Depth of each layer's front face in radiation lengths, shape (n_layers + 1,)."""
        return np.concatenate([[0.0], np.cumsum([self._material(i).thickness_x0 for i in range(self.n_layers)])])

    @cached_property
    def layer_depth_lambda(self) -> np.ndarray:
        """Depth of each layer's front face in interaction lengths, shape (n_layers + 1,)."""
        return np.concatenate(
            [[0.0], np.cumsum([self._material(i).thickness_lambda for i in range(self.n_layers)])]
        )

    def cell_of(self, layer: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Flat voxel index of points in layer position `layer`; −1 outside the readout.

        (u, v) are (r mm, α rad) for cylindrical geometries and (η mm, φ mm) for Cartesian ones.
        """
        cell = self.layers[layer].cell_of(u, v)
        return np.where(cell >= 0, cell + self.layer_offsets[layer], -1)

    # ----- coarse graining ---------------------------------------------------------------------
    def coarse_map(self, r_group: int, alpha_group: int, layer_group: int) -> np.ndarray:
        """Coarse voxel of each fine voxel, shape (n_voxels,), for a regular cylindrical geometry.

        Groups `r_group` radial × `alpha_group` angular × `layer_group` longitudinal fine voxels into
        one coarse voxel; coarse voxels are numbered in the same order (r fastest, then α, then layer).
        """
        self._require("cylindrical")
        if not self.is_regular:
            raise GeometryError(f"geometry {self.name!r}: coarse graining needs the same binning per layer")
        first = self.layers[0]
        for what, n, g in (("r", first.n_r, r_group), ("alpha", first.n_alpha, alpha_group),
                           ("layer", self.n_layers, layer_group)):
            if g < 1 or n % g:
                raise GeometryError(f"geometry {self.name!r}: {what} group {g} does not divide {n} bins")
        n_r, n_a = first.n_r // r_group, first.n_alpha // alpha_group
        c_r = self.voxel_r_bin // r_group
        c_a = self.voxel_alpha_bin // alpha_group
        c_l = self.voxel_layer // layer_group
        return (c_l * n_a + c_a) * n_r + c_r

    # ----- helpers -----------------------------------------------------------------------------
    def _require(self, kind: str) -> None:
        if self.kind != kind:
            raise GeometryError(f"geometry {self.name!r} is {self.kind}, this needs {kind}")

    def _material(self, layer: int):
        material = self.layers[layer].material
        if material is None:
            raise GeometryError(f"geometry {self.name!r}: layer {self.layers[layer].id} has no material")
        return material

    def describe(self) -> str:
        """One line: name, kind, layers and voxels."""
        return (f"{self.name}: {self.kind}, {self.particle} (pid {self.pid}), "
                f"{self.n_layers} layers, {self.n_voxels} voxels")
