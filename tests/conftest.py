"""Shared fixtures: one local Ray for the whole session, paths to the shared reference data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CALOCHALLENGE_XML = SHARED / "data" / "calochallenge"


@pytest.fixture(scope="session", autouse=True)
def _single_torch_thread():
    """Small models train several times faster on one thread than on two contended ones (2-core CI)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def ray_local():
    """A 2-CPU local Ray started once per test session (≈8 s), shut down at the end."""
    import ray

    from caloray.runtime import worker_niceness_env

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if not ray.is_initialized():
        worker_niceness_env()  # as caloray's own runs (caloray.runtime.init_ray)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def shared_xml_dir() -> Path:
    if not CALOCHALLENGE_XML.is_dir():
        pytest.skip(f"official binning XMLs not found at {CALOCHALLENGE_XML}")
    return CALOCHALLENGE_XML
