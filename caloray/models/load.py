"""One call to get a trained model back: a checkpoint file, or a registered ensemble from MLflow."""

from __future__ import annotations

from pathlib import Path

from caloray.models.base import Surrogate
from caloray.models.serialization import load_model


def load(name: str | Path, version: int | str | None = None, *, tracking_uri: str | None = None) -> Surrogate:
    """`name` is a checkpoint path (loaded weights_only) or a registry `NAME`, `NAME:VERSION` or `NAME@ALIAS`.

    Registered ensembles come from `tracking_uri` (default: `MLFLOW_TRACKING_URI`); `version` None or
    "latest" picks the newest version, "@ALIAS" the aliased one (e.g. "@validated").
    """
    path = Path(name)
    if path.suffix in (".pt", ".pth") or path.is_file():
        return load_model(path)
    from caloray.tracking.registry import load_registered, split_model_ref

    text = str(name)
    if version is None and not text.startswith(("/", ".")):
        text, version = split_model_ref(text)

    return load_registered(text, version, tracking_uri=tracking_uri)
