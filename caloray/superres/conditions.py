"""Conditional inputs of the universal per-coarse-voxel upsampler (thesis Sec. 4.2.2, Table 4.1).

Columns of one row (one coarse voxel of one shower), in this order:

====================  ==========================  ======================================
slice                 content                     raw unit
====================  ==========================  ======================================
0                     coarse voxel energy         MeV
1                     incident energy E_inc       MeV
2 … 2+k               energies of the k fine      MeV (oracle variant only; k = layer_group,
                      layers spanned, ascending   5 for choice A, 1 for choice B)
next 6                neighbour coarse energies   MeV, 0 where the neighbour is missing, in
                                                  `NEIGHBOUR_DIRECTIONS` order (±r, ±α, ±z)
next n_coarse_layers  one-hot coarse layer        —
next n_coarse_r       one-hot coarse radial bin   —
====================  ==========================  ======================================

Choice A: 1 + 1 + 5 + 6 + 9 + 9 = 31 (strict: 26). Choice B: 1 + 1 + 1 + 6 + 45 + 3 = 57 (strict: 56),
as in Table 4.1. Rows are shower-major: row b · n_coarse + c is coarse voxel c of shower b.
"""

from __future__ import annotations

import torch
from torch import Tensor

from caloray.superres.coarse import CoarseGrid

N_NEIGHBOURS = 6


def n_conditions(grid: CoarseGrid, oracle: bool) -> int:
    """Number of conditional inputs per coarse voxel (31 for ds2 choice A oracle, 26 strict)."""
    n_l, _, n_r = grid.coarse_shape
    return 2 + (grid.layer_group if oracle else 0) + N_NEIGHBOURS + n_l + n_r


def raw_conditions(
    grid: CoarseGrid,
    coarse: Tensor,
    incident_energies: Tensor,
    layer_energies: Tensor | None = None,
) -> Tensor:
    """Unscaled conditional inputs (B · n_coarse, n_conditions), energies in MeV.

    coarse (B, n_coarse) MeV, incident_energies (B,) MeV, layer_energies (B, n_layers) MeV of the fine
    layers (given → oracle variant with the spanned layer energies; None → strict variant).
    """
    batch, n_coarse = coarse.shape
    if n_coarse != grid.n_coarse:
        raise ValueError(f"coarse energies have {n_coarse} columns, the grid has {grid.n_coarse} coarse voxels")
    device, dtype = coarse.device, coarse.dtype
    columns = [coarse.reshape(-1, 1), incident_energies.reshape(-1).repeat_interleave(n_coarse)[:, None]]
    if layer_energies is not None:
        spanned = torch.as_tensor(grid.spanned_layers, device=device)
        columns.append(layer_energies.to(dtype)[:, spanned].reshape(batch * n_coarse, grid.layer_group))
    neighbours = torch.as_tensor(grid.neighbours, device=device)
    padded = torch.cat([coarse, coarse.new_zeros(batch, 1)], dim=1)  # column n_coarse = "missing" = 0
    columns.append(padded[:, torch.where(neighbours >= 0, neighbours, n_coarse)].reshape(-1, N_NEIGHBOURS))
    n_l, _, n_r = grid.coarse_shape
    layer, _, r = (torch.as_tensor(a, device=device) for a in grid.coarse_coordinates)
    onehot = torch.cat([torch.eye(n_l, dtype=dtype, device=device)[layer],
                        torch.eye(n_r, dtype=dtype, device=device)[r]], dim=1)
    columns.append(onehot.repeat(batch, 1))
    return torch.cat(columns, dim=1)


def jitter_coarse_energy(raw: Tensor, noise_kev: float, generator: torch.Generator | None = None) -> Tensor:
    """Training noise on column 0 (the coarse energy): adds U[−½, ½] · `noise_kev` keV (MeV units).

    Together with the ½ · `noise_kev` offset of `ConditionScaling` this is the thesis' E + rand[0, 1 keV].
    """
    if noise_kev <= 0:
        return raw
    noise = torch.rand(raw.shape[0], generator=generator, dtype=raw.dtype, device=raw.device) - 0.5
    out = raw.clone()
    out[:, 0] = out[:, 0] + noise * (noise_kev * 1e-3)
    return out
