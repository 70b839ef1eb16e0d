"""Model kinds by name, and construction from (kind, config)."""

from __future__ import annotations

from typing import Any

from caloray.errors import ConfigError
from caloray.models.base import Surrogate
from caloray.models.distill import VoxelFlowStudent
from caloray.models.ensemble import Ensemble
from caloray.models.inn import BayesianShowerINN, ShowerINN
from caloray.models.layer_flow import LayerEnergyFlow
from caloray.models.regressor import EnergyRegressor
from caloray.models.vae import ShowerVAE
from caloray.models.voxel_flow import VoxelFlow
from caloray.superres.model import SuperResolutionFlow

#: Every buildable model class by its `kind`.
MODEL_KINDS: dict[str, type[Surrogate]] = {
    cls.kind: cls
    for cls in (LayerEnergyFlow, VoxelFlow, ShowerVAE, EnergyRegressor, SuperResolutionFlow, Ensemble, ShowerINN,
                BayesianShowerINN, VoxelFlowStudent)
}


def build(kind: str, config: dict[str, Any]) -> Surrogate:
    """An untrained model of `kind` from its JSON config (the keyword arguments of its constructor)."""
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(MODEL_KINDS))}")
    try:
        return MODEL_KINDS[kind](**config)
    except TypeError as exc:
        raise ConfigError(f"model kind {kind!r}: bad config ({exc})") from None
