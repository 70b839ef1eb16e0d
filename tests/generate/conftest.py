"""Generation tests: one small world (geometry XML, simulated training file, trained flow) per session."""

from __future__ import annotations

import pytest
from generate_world import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    """≈ 4 s: 2000 simulated layer-sum showers and a Flow-I fitted for 150 steps."""
    return build_world(tmp_path_factory.mktemp("generate-world"))
