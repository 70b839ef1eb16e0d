"""Upsampling shower files with a SuperResolutionFlow into CaloChallenge HDF5 shards, on the shared shard runner.

Inputs are either *fine reference files* (n_voxels per row: coarse-grained here; the oracle variant takes its
fine-layer energies from the same fine shower, the thesis' evaluation setup) or *coarse-only files*
(n_coarse per row, e.g. from a coarse generator): these carry no fine-layer energies, so only the strict
variant (`oracle=False`) can upsample them.

Sampling is deterministic: a unit is `UNIT_BATCHES` batches of one file; each batch of ≤ batch_size rows seeds
torch from (seed, the input's sha256, first row), so the same inputs, batch size and seed give bit-identical
shards on any cluster and in any folder (on the same device type).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from caloray.errors import CalorayError, ShowerFileError
from caloray.io import expand_paths, inspect_shower_file, read_shower_rows, write_showers
from caloray.pipelines.shards import Unit, UnitWorker, row_units, run_units, unit_seed
from caloray.runtime import TORCH_RNG_LOCK
from caloray.superres.coarse import CoarseGrid, coarse_energies, fine_layer_energies
from caloray.superres.model import SuperResolutionFlow

#: Batches per work unit (one output shard).
UNIT_BATCHES = 16


def superres_members(model: torch.nn.Module) -> list[SuperResolutionFlow]:
    """The SuperResolutionFlow(s) of a loaded model: itself, or the members of an Ensemble."""
    members = list(model.members) if hasattr(model, "members") else [model]
    for m in members:
        if not isinstance(m, SuperResolutionFlow):
            raise CalorayError(f"model kind {getattr(m, 'kind', type(m).__name__)!r} is not 'superres-flow'")
    return members


def load_superres(model_ref: str | Path, tracking_uri: str | None = None) -> list[SuperResolutionFlow]:
    """Load a checkpoint file or registered `NAME[:VERSION]` and return its SuperResolutionFlow member(s)."""
    from caloray.tracking import load

    return superres_members(load(model_ref, tracking_uri=tracking_uri))


def check_variant(members: Sequence[SuperResolutionFlow], grid: CoarseGrid, oracle: bool | None) -> bool:
    """Check the model's coarse grid and variant against the request; returns the variant (True = oracle)."""
    m = members[0]
    if m.grid != grid:
        raise CalorayError(f"model grid {m.grid} does not match the requested coarse grid {grid}")
    if oracle is not None and bool(oracle) != m.oracle:
        want, have = ("oracle", "strict") if oracle else ("strict", "oracle")
        raise CalorayError(f"requested the {want} variant but the model is the {have} variant")
    return m.oracle


@torch.no_grad()
def upsample_rows(
    members: Sequence[SuperResolutionFlow],
    showers: np.ndarray,
    incident_energies: np.ndarray,
    source_rows: np.ndarray,
    device: torch.device,
) -> np.ndarray:
    """Upsample one batch: showers (B, n_voxels) fine or (B, n_coarse) coarse MeV → fine (B, n_voxels) float32 MeV.

    Ensembles: shower i is upsampled by member (source_row mod K); with one member, one flow call per batch.
    The caller seeds torch.
    """
    grid = members[0].grid
    dtype = members[0].dtype
    x = torch.as_tensor(np.asarray(showers), device=device).to(dtype)
    e_inc = torch.as_tensor(np.asarray(incident_energies).reshape(-1), device=device).to(dtype)
    if x.shape[1] == grid.n_voxels:
        coarse = coarse_energies(x, grid)
        layers = fine_layer_energies(x, grid) if members[0].oracle else None
    elif x.shape[1] == grid.n_coarse:
        if members[0].oracle:
            raise CalorayError("coarse-only input has no fine-layer energies: upsample it with the strict variant")
        coarse, layers = x, None
    else:
        raise CalorayError(f"showers have {x.shape[1]} voxels; expected {grid.n_voxels} (fine) or "
                           f"{grid.n_coarse} (coarse)")
    out = torch.zeros(x.shape[0], grid.n_voxels, dtype=dtype, device=device)
    which = np.asarray(source_rows) % len(members)
    for k, member in enumerate(members):
        rows = torch.as_tensor(np.nonzero(which == k)[0], device=device)
        if rows.numel():
            out[rows] = member.upsample(coarse[rows], e_inc[rows], None if layers is None else layers[rows])
    return out.cpu().numpy().astype(np.float32)


class _Upsampler(UnitWorker):
    """Loads the model once per actor (float32 on a GPU), then upsamples one (file, row range) unit. Its record's
    stats hold the unit's total input and upsampled energy (MeV, float64 sums), so the workflow's energy check
    sums records instead of reading every file again."""

    def __init__(self, model_ref: str, tracking_uri: str | None, seed: int, oracle: bool | None, grid: CoarseGrid,
                 batch_size: int, geometry: str, attrs: dict[str, Any]) -> None:
        self.model_ref, self.tracking_uri, self.seed = model_ref, tracking_uri, seed
        self.oracle, self.grid = oracle, grid
        self.batch_size, self.geometry, self.attrs = batch_size, geometry, attrs

    def setup(self, device: str) -> None:
        self.device = torch.device(device)
        members = load_superres(self.model_ref, self.tracking_uri)
        check_variant(members, self.grid, self.oracle)
        if self.device.type == "cuda":
            members = [m.to(self.device).float() for m in members]
            for m in members:
                m.dtype_name = "float32"
        self.members = [m.eval() for m in members]

    def compute(self, unit: Unit) -> dict[str, np.ndarray]:
        start, stop = unit.key["start"], unit.key["stop"]
        data = read_shower_rows(unit.source, start, stop)
        fine = []
        for lo in range(start, stop, self.batch_size):
            rows = np.arange(lo, min(lo + self.batch_size, stop))
            with TORCH_RNG_LOCK:
                torch.manual_seed(unit_seed(self.seed, unit.key["input_sha256"], lo))
                try:
                    fine.append(upsample_rows(self.members, data["showers"][rows - start],
                                              data["incident_energies"][rows - start], rows, self.device))
                except CalorayError as exc:
                    raise ShowerFileError(f"{unit.source}: {exc}") from None
        showers = np.concatenate(fine)
        self.energy = {"energy_in_mev": float(np.sum(data["showers"], dtype=np.float64)),
                       "energy_out_mev": float(np.sum(showers, dtype=np.float64))}
        return {"showers": showers, "incident_energies": data["incident_energies"].astype(np.float32),
                "source_row": np.arange(start, stop, dtype=np.int64)}

    def write(self, path: Path, result: dict[str, np.ndarray]) -> None:
        write_showers(path, result["showers"], result["incident_energies"], geometry=self.geometry,
                      attrs=self.attrs, extra={"source_row": result["source_row"]})

    def stats(self) -> dict[str, float]:
        return self.energy


def upsample_files(
    model_ref: str | Path,
    inputs: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    geometry: str = "ds2",
    choice: str | Sequence[int] = "A",
    oracle: bool | None = None,
    batch_size: int = 256,
    seed: int = 0,
    tracking_uri: str | None = None,
    actors: int | None = None,
) -> list[Path]:
    """Upsample shower files with a SuperResolutionFlow into ordered CaloChallenge HDF5 shards in `out_dir`.

    model_ref: checkpoint file or registered `NAME[:VERSION]`; inputs: files/folders/globs of fine reference
    showers (n_voxels) or coarse-only showers (n_coarse, strict variant only); `oracle` None accepts the
    model's variant, True/False insists on it. Actors: one per GPU when the cluster has GPUs (float32 on GPU),
    else `actors` or one per CPU. Resumable (`caloray.pipelines.shards`; each unit's record in its manifest holds
    the unit's input and upsampled energy). Returns the shard paths in order.
    """
    from caloray.generate.models import resolve_model_source
    from caloray.geometry import get_geometry
    from caloray.provenance import provenance

    if batch_size < 1:
        raise CalorayError(f"batch_size must be ≥ 1, got {batch_size}")
    paths = expand_paths(inputs)  # raises when nothing is found
    grid = CoarseGrid.from_geometry(get_geometry(geometry), choice)
    members = load_superres(model_ref, tracking_uri)  # fail early on the driver, before any actor starts
    variant = "oracle" if check_variant(members, grid, oracle) else "strict"
    files = [(path, inspect_shower_file(path).n_showers) for path in paths]
    source = resolve_model_source(str(model_ref), tracking_uri)
    identity = {"workflow": "superres", "model": {"name": source.name, "version": source.version,
                                                  "sha256": source.sha256},
                "seed": int(seed), "choice": str(choice), "variant": variant, "geometry": geometry,
                "batch_size": int(batch_size)}
    attrs = provenance(None, model=str(model_ref), seed=int(seed), choice=str(choice), variant=variant,
                       geometry=geometry, batch_size=int(batch_size))
    worker = _Upsampler(source.ref, tracking_uri, seed, oracle, grid, batch_size, geometry, attrs)
    units = row_units("superres", ".h5", files, batch_size * UNIT_BATCHES)
    return [Path(out_dir) / r.file for r in run_units(out_dir, identity, units, worker, actors=actors)]
