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
    """`model.kwargs`; `voxel_layer`, when the model takes it and it is unset, comes from `data.geometry`."""
    kwargs = dict(config.model.kwargs)
    cls = MODEL_KINDS.get(config.model.kind)
    if cls is None or "voxel_layer" in kwargs:
        return kwargs
    if "voxel_layer" in inspect.signature(cls).parameters:
        if config.data.geometry is None:
            raise ConfigError(
                f"model {config.model.kind!r} needs voxel_layer: set data.geometry"
                " (or model.kwargs.voxel_layer)"
            )
        from caloray.geometry import get_geometry

        kwargs["voxel_layer"] = get_geometry(config.data.geometry).voxel_layer.tolist()
    return kwargs
