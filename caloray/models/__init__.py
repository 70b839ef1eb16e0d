"""Trainable surrogates (flows, VAEs, regressors), their preprocessing, ensembles and checkpoints."""

from caloray.models.base import Batch, Surrogate
from caloray.models.distill import VoxelFlowStudent
from caloray.models.ensemble import Ensemble
from caloray.models.inn import BayesianShowerINN, ShowerINN
from caloray.models.layer_flow import LayerEnergyFlow
from caloray.models.load import load
from caloray.models.registry import MODEL_KINDS, build
from caloray.models.regressor import EnergyRegressor
from caloray.models.serialization import CheckpointError, load_model, read_checkpoint, save_model
from caloray.models.vae import ShowerVAE
from caloray.models.voxel_flow import VoxelFlow, sample_showers

__all__ = [
    "MODEL_KINDS",
    "Batch",
    "BayesianShowerINN",
    "CheckpointError",
    "EnergyRegressor",
    "Ensemble",
    "LayerEnergyFlow",
    "ShowerINN",
    "ShowerVAE",
    "Surrogate",
    "VoxelFlow",
    "VoxelFlowStudent",
    "build",
    "load",
    "load_model",
    "read_checkpoint",
    "sample_showers",
    "save_model",
]
