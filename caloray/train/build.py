"""Building the configured surrogate: registry lookup and geometry-derived constructor arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from caloray.errors import ConfigError
from caloray.models import MODEL_KINDS, Surrogate, build
from caloray.train.config import TrainConfig

#: Builds an untrained surrogate from its registry kind and constructor keyword arguments.
ModelBuilder = Callable[[str, dict[str, Any]], Surrogate]


def default_model_builder(kind: str, kwargs: dict[str, Any]) -> Surrogate:
    """`caloray.models.build`: the registry of shipped model kinds."""
    return build(kind, kwargs)


def resolve_model_kwargs(config: TrainConfig) -> dict[str, Any]:
    """`model.kwargs`; when the model takes them and they are unset, `voxel_layer` and `readout_threshold_mev`
    (the geometry's per-cell readout threshold, 0 when it has none) come from `data.geometry`."""
    kwargs = dict(config.model.kwargs)
    cls = MODEL_KINDS.get(config.model.kind)
    if cls is None:
        return kwargs
    from caloray.geometry import get_geometry

    parameters = inspect.signature(cls).parameters
    if "voxel_layer" in parameters and "voxel_layer" not in kwargs:
        if config.data.geometry is None:
            raise ConfigError(
                f"model {config.model.kind!r} needs voxel_layer: set data.geometry"
                " (or model.kwargs.voxel_layer)"
            )
        kwargs["voxel_layer"] = get_geometry(config.data.geometry).voxel_layer.tolist()
    if "readout_threshold_mev" in parameters and "readout_threshold_mev" not in kwargs and config.data.geometry:
        attributes = get_geometry(config.data.geometry).attributes
        kwargs["readout_threshold_mev"] = float(attributes.get("readout_threshold_mev", 0.0))
    return kwargs
