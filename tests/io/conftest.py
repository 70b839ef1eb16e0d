"""Shared I/O fixtures: a ROOT file writer (uproot), the way physicists lay showers out in a TTree."""

import numpy as np
import pytest


def _write_root(path, showers, energies, *, tree="showers", energy_branch="incident_energies",
                shower_branch="showers", geometry=None, extra=None):
    """One TTree entry per shower: a scalar energy branch and a fixed-size voxel array branch."""
    import uproot

    branches = {energy_branch: np.dtype((energies.dtype, energies.shape[1:])),
                shower_branch: np.dtype((showers.dtype, showers.shape[1:]))}
    branches |= {k: v.dtype for k, v in (extra or {}).items()}
    with uproot.recreate(path) as f:
        f.mktree(tree, branches)
        f[tree].extend({energy_branch: energies, shower_branch: showers, **(extra or {})})
        if geometry is not None:
            f["geometry"] = geometry
    return path


@pytest.fixture(scope="session")
def write_root():
    """`write_root(path, showers (N, V), energies (N,), *, tree, energy_branch, shower_branch, geometry, extra)`."""
    pytest.importorskip("uproot")
    return _write_root
