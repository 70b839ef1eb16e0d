"""Fixtures for the model tests: single-threaded torch (tiny models run faster and reproducibly)."""

from __future__ import annotations

import pytest
import torch
from models_toy_data import TOY_VOXEL_LAYER, make_toy_batch


@pytest.fixture(autouse=True, scope="module")
def single_thread_torch():
    """Run this directory's tests with one intra-op thread; restore the previous setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def toy_batch() -> dict[str, torch.Tensor]:
    return make_toy_batch(64)


@pytest.fixture
def toy_voxel_layer() -> list[int]:
    return list(TOY_VOXEL_LAYER)
