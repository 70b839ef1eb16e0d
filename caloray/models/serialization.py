"""Checkpoints that load with `torch.load(weights_only=True)` and the registry only.

A checkpoint is one file holding a plain dict:
``{"format": "caloray-model", "version": 1, "kind": str, "config": <JSON-serializable dict>,
"state_dict": {name: Tensor}}``. Ensembles are saved the same way (kind ``"ensemble"``; the config lists
the member kind and every member's config, the state dict holds ``members.<k>.*``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from caloray.errors import CalorayError
from caloray.models.base import Surrogate
from caloray.models.registry import build

FORMAT = "caloray-model"
VERSION = 1


class CheckpointError(CalorayError, ValueError):
    """A model checkpoint is unreadable, malformed, or holds another kind than expected."""


def save_model(model: Surrogate, path: str | Path) -> Path:
    """Write `model` (kind, config, state dict on CPU) to `path`; returns the path."""
    path = Path(path)
    config = model.config()
    try:
        json.dumps(config)
    except TypeError as exc:
        raise CheckpointError(f"{path}: config of {model.kind!r} is not JSON-serializable ({exc})") from None
    state_dict = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "kind": model.kind,
        "config": config,
        "state_dict": state_dict,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The validated checkpoint dict, loaded with ``weights_only=True`` (no arbitrary unpickling)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # unpickling refused or corrupt file
        raise CheckpointError(f"{path}: not a loadable caloray checkpoint ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format", FORMAT) != FORMAT:
        raise CheckpointError(f"{path}: not a caloray model checkpoint")
    if payload.get("version", VERSION) != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')!r}, expected {VERSION}")
    for key in ("kind", "config", "state_dict"):
        if key not in payload:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    return payload


def load_model(
    path: str | Path,
    expected_kind: str | None = None,
    allow_ensemble: bool = False,
    map_location: str | torch.device = "cpu",
) -> Surrogate:
    """Rebuild a model saved by `save_model`.

    If `expected_kind` is given and the checkpoint holds another kind, raise `CheckpointError` naming the
    file and both kinds; with `allow_ensemble=True` an ensemble whose members are `expected_kind` is
    accepted too. The model takes the floating dtype of the saved weights.
    """
    path = Path(path)
    payload = read_checkpoint(path, map_location)
    kind, config = payload["kind"], payload["config"]
    if expected_kind is not None and kind != expected_kind:
        member_kind = config.get("member_kind") if kind == "ensemble" else None
        if not (allow_ensemble and member_kind == expected_kind):
            found = f"{kind!r} (of {member_kind!r} members)" if member_kind else repr(kind)
            raise CheckpointError(f"{path}: checkpoint holds kind {found}, expected kind {expected_kind!r}")
    model = build(kind, config)
    state_dict = payload["state_dict"]
    dtypes = {t.dtype for t in state_dict.values() if t.is_floating_point()}
    if len(dtypes) == 1:
        model.to(dtypes.pop())
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the {kind!r} config ({exc})") from None
    return model.to(map_location)
