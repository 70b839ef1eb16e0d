"""One call to get a trained model back from a checkpoint file.

Registered ensembles live in the tracking layer: `caloray.tracking.load` takes a checkpoint path or a registry
reference. Keeping the registry out of here keeps `caloray.models` free of MLflow (and of an import cycle
through `caloray.tracking.registry`, which builds models).
"""

from __future__ import annotations

from pathlib import Path

from caloray.models.base import Surrogate
from caloray.models.serialization import CheckpointError, load_model


def is_checkpoint(name: str | Path) -> bool:
    """True when `name` names a checkpoint file (`.pt`/`.pth` or an existing file) rather than a registry ref."""
    path = Path(name).expanduser()
    return path.suffix in (".pt", ".pth") or path.is_file()


def load(path: str | Path) -> Surrogate:
    """The model saved at checkpoint `path` (loaded weights_only)."""
    if not is_checkpoint(path):
        raise CheckpointError(f"{path}: no such checkpoint file (registered models load with caloray.tracking.load)")
    return load_model(path)
