"""Random unit directions on the sphere and the projection of samples onto them."""

from __future__ import annotations

import torch
from torch import Tensor

from caloray.stats._shapes import as_replicates

#: oneDNN's linear primitive (weights (K, d)), or None where this torch build lacks it (see float32_product).
_ONEDNN_LINEAR = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None) if (
    torch.backends.mkldnn.is_available()) else None

#: Rows of a sample projected per matrix product (bounds the float64 copy of the input).
PROJECTION_ROWS = 1 << 14


def random_directions(d: int, n_slices: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
    """K = `n_slices` unit vectors drawn uniformly on the sphere S^{d-1} from `seed`: (d, K) float64.

    Drawn on the CPU from a seeded generator (normalised standard normals), so the same
    (d, n_slices, seed) gives the same directions on every machine and device.
    """
    if d < 1 or n_slices < 1:
        raise ValueError(f"need d >= 1 and n_slices >= 1, got d={d}, n_slices={n_slices}")
    generator = torch.Generator().manual_seed(int(seed))
    normals = torch.randn(d, n_slices, generator=generator, dtype=torch.float64)
    return (normals / normals.norm(dim=0, keepdim=True)).to(device)


def float32_product(a: Tensor, theta: Tensor) -> Tensor:
    """a (rows, d) @ θ (d, K) in float32 → (rows, K) float32.

    On CPUs, through oneDNN's matmul primitive (the kernel torch's compiler emits for linear layers) when this
    torch build has it: for the tall-skinny products of projections (K ~ 100 directions, d in the thousands) it
    takes ~10–15% less CPU time than the default BLAS call (`python -m bench --only sliced`), with the same float32
    inputs and float32 accumulation. Anywhere else, or if that private op is missing, the plain matmul.
    """
    if a.device.type == "cpu" and a.dtype == theta.dtype == torch.float32 and _ONEDNN_LINEAR is not None:
        try:
            return _ONEDNN_LINEAR(a.contiguous(), theta.T.contiguous(), None, "none", [], "")
        except RuntimeError:  # an unsupported layout or build: the plain product below is always right
            pass
    return a @ theta


def project(x: Tensor, directions: Tensor, *, keep_float32: bool = False) -> Tensor:
    """Projections θᵀx for all K directions: x (R, n, d), directions (d, K) → (R, n, K) float64.

    float32 samples (what the feature maps produce) go through one float32 matrix product over all
    replicates and rows at once, (R·n, d) × (d, K), with no float64 copy of the input: about twice the
    float64 rate and half the memory traffic, while the rounding of a d-term dot product (~1e-7·sqrt(d)
    relative) stays far below what a KS rank or a W1 distance resolves (tests/stats/test_sliced.py).
    `keep_float32` returns those float32 products as they are (R, n, K) float32, for the sliced statistics,
    whose 1-D kernels sort float32 rows about twice as fast and give the same values either way.
    Other dtypes are projected in float64, in blocks of `PROJECTION_ROWS` rows.
    """
    x = as_replicates(x)
    if directions.dim() != 2 or directions.shape[0] != x.shape[2]:
        raise ValueError(f"directions must be (d={x.shape[2]}, K), got {tuple(directions.shape)}")
    if x.dtype == torch.float32:
        theta32 = directions.to(device=x.device, dtype=torch.float32)
        out = float32_product(x.reshape(-1, x.shape[2]), theta32).reshape(x.shape[0], x.shape[1], theta32.shape[1])
        return out if keep_float32 else out.to(torch.float64)
    theta = directions.to(device=x.device, dtype=torch.float64)
    flat = x.reshape(-1, x.shape[2])
    out = torch.empty(flat.shape[0], theta.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, flat.shape[0], PROJECTION_ROWS):
        stop = start + PROJECTION_ROWS
        out[start:stop] = flat[start:stop].to(torch.float64) @ theta
    return out.reshape(x.shape[0], x.shape[1], theta.shape[1])
