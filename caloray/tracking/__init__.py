"""MLflow: one run lifecycle for every workflow (`Run`), ensemble training runs, and the model registry."""

from caloray.tracking.params import flatten_params
from caloray.tracking.plots import plot_loss_curves
from caloray.tracking.registry import (
    RegistryError,
    download_registered,
    load,
    load_registered,
    register_ensemble,
    registered_energy_range,
    registered_names,
)
from caloray.tracking.run import Run
from caloray.tracking.store import local_tracking_uri, resolve_tracking_uri, ui_command
from caloray.tracking.tracker import EnsembleTracker

__all__ = [
    "EnsembleTracker",
    "RegistryError",
    "Run",
    "download_registered",
    "flatten_params",
    "load",
    "load_registered",
    "local_tracking_uri",
    "plot_loss_curves",
    "register_ensemble",
    "registered_energy_range",
    "registered_names",
    "resolve_tracking_uri",
    "ui_command",
]
