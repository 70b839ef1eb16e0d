"""Super-resolution tests: single-threaded torch (the CI box has 2 shared cores) and a tiny grid."""

from __future__ import annotations

import pytest
import torch

from caloray.superres import CoarseGrid


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_grid() -> CoarseGrid:
    """4 layers × 4 α × 2 r fine, grouped 1 r × 2 α × 2 z → 2 × 2 × 2 = 8 coarse voxels of 4 fine."""
    return CoarseGrid(n_layers=4, n_alpha=4, n_r=2, r_group=1, alpha_group=2, layer_group=2)
