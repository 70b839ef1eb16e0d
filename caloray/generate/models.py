"""Models that generate full showers: naming (registry or checkpoint), loading, and batched sampling.

Supported (single models or `Ensemble`s of them):

- ``shower-vae``, ``shower-inn``, ``bayesian-shower-inn``: their `sample` returns complete showers from E_inc
  alone (the Bayesian INN draws one weight set per batch);
- ``voxel-flow`` (or its fast ``voxel-flow-student``) with a ``layer-energy-flow`` as `layer_model`: the CaloFlow
  chain, Flow-I layer energies then Flow-II voxel energies (`caloray.models.sample_showers`);
- one of the shower kinds with a ``layer-energy-flow`` as `layer_model`: the same split, Flow-I layer energies and
  the shower model's distribution of each layer's energy over its voxels (its own layer energies are dropped);
- ``layer-energy-flow`` alone only when every voxel is its own layer (L = V), so its layer energies are the voxels.

Anything else (a Flow-I on a multi-voxel geometry, regressors, super-resolution flows) is a clear error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from caloray.errors import CalorayError, ConfigError
from caloray.models.base import Surrogate
from caloray.models.load import is_checkpoint
from caloray.provenance import sha256_file

#: Kinds whose `sample` returns complete showers from E_inc alone.
SHOWER_KINDS = ("shower-vae", "shower-inn", "bayesian-shower-inn")
#: Flow-II kinds that need a Flow-I (`layer_model`) for their layer energies.
CHAIN_KINDS = ("voxel-flow", "voxel-flow-student")


class GenerationError(CalorayError, ValueError):
    """A model cannot generate full showers, an output folder belongs to another generation, or a shard is bad."""




@dataclass(frozen=True)
class ModelSource:
    """A model pinned for one generation: `ref` always loads the same weights.

    ref: registry `NAME:VERSION` (version resolved once) or the absolute checkpoint path.
    sha256: digest of the checkpoint file (None for registry models, whose versions are immutable).
    """

    ref: str
    name: str
    version: int | None = None
    sha256: str | None = None

    @property
    def registry(self) -> bool:
        return self.version is not None

    def identity(self) -> dict[str, Any]:
        """What a generation's fingerprint records about the model."""
        return {"ref": self.ref, "sha256": self.sha256}

    def load(self, tracking_uri: str | None = None) -> Surrogate:
        """The model (weights_only checkpoint or registered ensemble)."""
        from caloray.tracking import load

        return load(self.ref, tracking_uri=tracking_uri)


def resolve_model_source(text: str, tracking_uri: str | None = None) -> ModelSource:
    """Pin `text` (checkpoint path or registry `NAME[:VERSION]` / `NAME@ALIAS`, newest version when omitted)."""
    if is_checkpoint(text):
        path = Path(text).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"{path}: no such checkpoint file")
        return ModelSource(ref=str(path), name=path.name, sha256=sha256_file(path))
    from mlflow.tracking import MlflowClient

    from caloray.tracking.registry import resolve_version, split_model_ref

    name, version = split_model_ref(text)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    number = resolve_version(client, name, version)
    return ModelSource(ref=f"{name}:{number}", name=name, version=number)


def member_kind(model: Surrogate) -> str:
    """The kind of a model, or of an ensemble's members."""
    return str(getattr(model, "member_kind", model.kind))


def _voxel_layer(model: Surrogate) -> list[int]:
    config = model.config()
    config = config.get("member_configs", [config])[0]
    return [int(i) for i in config["voxel_layer"]]


def _unsupported(kind: str, detail: str = "") -> GenerationError:
    return GenerationError(
        f"model kind {kind!r} cannot generate full showers{detail}. Generation needs a shower-vae, a "
        "(bayesian-)shower-inn, a voxel-flow or voxel-flow-student together with its Flow-I as layer_model "
        "(--layer-model), or a layer-energy-flow whose every voxel is its own layer")


class ShowerSampler:
    """Full showers (B, V) MeV from incident energies (B,) MeV with one of the supported model set-ups."""

    def __init__(self, model: Surrogate, layer_model: Surrogate | None = None) -> None:
        kind = member_kind(model)
        self.model, self.layer_model = model.eval(), None if layer_model is None else layer_model.eval()
        if kind in CHAIN_KINDS or (kind in SHOWER_KINDS and layer_model is not None):
            if layer_model is None:
                raise GenerationError("a voxel-flow (Flow-II) needs the Flow-I that samples its layer energies: "
                                      "set layer_model (--layer-model) to a layer-energy-flow")
            if member_kind(layer_model) != "layer-energy-flow":
                raise GenerationError(f"layer_model must be a layer-energy-flow, got {member_kind(layer_model)!r}")
            if _voxel_layer(layer_model) != _voxel_layer(model):
                raise GenerationError("layer_model and model were built for different voxel → layer maps")
            self.mode = "chain"
        elif layer_model is not None:
            raise GenerationError(f"layer_model is only used with a voxel-flow or a shower model, not with {kind!r}")
        elif kind in SHOWER_KINDS:
            self.mode = "showers"
        elif kind == "layer-energy-flow":
            voxel_layer = _voxel_layer(model)
            if max(voxel_layer) + 1 != len(voxel_layer):
                raise _unsupported(kind, f": it samples {max(voxel_layer) + 1} layer energies, not the "
                                         f"{len(voxel_layer)} voxels of a shower (pair a voxel-flow with it)")
            self.mode = "layer-voxels"
        else:
            raise _unsupported(kind)
        self.kind = kind
        self.voxel_layer = _voxel_layer(model)
        self.n_voxels = len(self.voxel_layer)
        self._index = torch.tensor(self.voxel_layer, dtype=torch.long)

    @property
    def description(self) -> str:
        """E.g. "shower-vae", "layer-energy-flow → voxel-flow"."""
        return f"layer-energy-flow → {self.kind}" if self.mode == "chain" else self.kind

    @property
    def dtype(self) -> torch.dtype:
        tensor = next((t for t in self.model.state_dict().values() if t.is_floating_point()), None)
        return torch.float32 if tensor is None else tensor.dtype

    def to(self, device: torch.device | str) -> ShowerSampler:
        self.model = self.model.to(device)
        if self.layer_model is not None:
            self.layer_model = self.layer_model.to(device)
        self._index = self._index.to(device)
        return self

    @property
    def bayesian(self) -> bool:
        """Whether the model samples with weight draws (a Bayesian INN): `sample(..., weight_draw_seed)`."""
        return self.mode == "showers" and bool(getattr(self.model, "bayesian", False))

    @torch.no_grad()
    def sample(self, incident_energies_mev: Tensor, weight_draw_seed: int | None = None) -> Tensor:
        """Showers (B, V) MeV for incident energies (B,) MeV (dtype and device of the model); a Bayesian model
        uses the weight draw `weight_draw_seed` (None: its default)."""
        if self.bayesian:
            return self.model.sample(incident_energies_mev, weight_draw_seed=weight_draw_seed)["showers"]
        if weight_draw_seed is not None:
            raise GenerationError(f"weight_draw_seed needs a Bayesian model, not {self.description}")
        if self.mode == "showers":
            return self.model.sample(incident_energies_mev)["showers"]
        if self.mode == "chain":  # the voxel→layer maps were checked to agree in __init__
            assert self.layer_model is not None
            layer_energies = self.layer_model.sample(incident_energies_mev)["layer_energies"]
            return self.model.sample(incident_energies_mev, layer_energies=layer_energies)["showers"]
        layer_energies = self.model.sample(incident_energies_mev)["layer_energies"]
        return layer_energies.index_select(1, self._index)


def load_sampler(model: ModelSource, layer_model: ModelSource | None, tracking_uri: str | None) -> ShowerSampler:
    """Load the pinned model(s) and wrap them (raises `GenerationError` for unsupported set-ups)."""
    layer = None if layer_model is None else layer_model.load(tracking_uri)
    return ShowerSampler(model.load(tracking_uri), layer)


def iter_showers(sampler: ShowerSampler, energies_mev: np.ndarray, torch_seed: int, batch_size: int,
                 device: torch.device | str = "cpu", weight_draw_seed: int | None = None,
                 ) -> Iterator[tuple[int, int, np.ndarray]]:
    """Seed torch once, then yield (lo, hi, showers (hi − lo, V) float32 MeV) batch by batch (a Bayesian model:
    every batch with the weight draw `weight_draw_seed` when given).

    Deterministic for fixed (torch_seed, batch_size, device type, model). Raises `GenerationError` on
    non-finite output.
    """
    torch.manual_seed(torch_seed)
    for lo in range(0, len(energies_mev), batch_size):
        hi = min(lo + batch_size, len(energies_mev))
        energies = torch.tensor(np.asarray(energies_mev[lo:hi]), device=device).to(sampler.dtype)
        showers = sampler.sample(energies, weight_draw_seed).float().cpu().numpy()
        if not np.isfinite(showers).all():
            raise GenerationError(f"the {sampler.description} model produced non-finite voxel energies")
        yield lo, hi, showers


def generate_showers(sampler: ShowerSampler, energies_mev: np.ndarray, torch_seed: int, batch_size: int,
                     device: torch.device | str = "cpu") -> np.ndarray:
    """Showers (N, V) float32 MeV for incident energies (N,) MeV (see `iter_showers`)."""
    out = np.empty((len(energies_mev), sampler.n_voxels), dtype=np.float32)
    for lo, hi, showers in iter_showers(sampler, energies_mev, torch_seed, batch_size, device):
        out[lo:hi] = showers
    return out
