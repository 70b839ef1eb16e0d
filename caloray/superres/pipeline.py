"""Ray Data upsampling pipeline: shower files → SuperResolutionFlow → CaloChallenge HDF5 shards.

Inputs are either *fine reference files* (n_voxels per row: coarse-grained here; the oracle variant takes its
fine-layer energies from the same fine shower, the thesis' evaluation setup) or *coarse-only files*
(n_coarse per row, e.g. from a coarse generator): these carry no fine-layer energies, so only the strict
variant (`oracle=False`) can upsample them.

Sampling is deterministic: each batch is one read block (≤ batch_size rows of one file, laid out from the
inputs and batch_size alone) and seeds torch from (seed, source_file, first source_row), so the same inputs,
batch size and seed give bit-identical shards on any cluster (on the same device type).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch

from caloray.errors import CalorayError
from caloray.io import ShowerDatasource, expand_paths, read_showers, write_dataset
from caloray.runtime import TORCH_RNG_LOCK
from caloray.superres.coarse import CoarseGrid, coarse_energies, fine_layer_energies
from caloray.superres.model import SuperResolutionFlow


def batch_seed(seed: int, source_file: str, first_row: int) -> int:
    """63-bit torch seed of one batch from (run seed, file, first row)."""
    digest = hashlib.sha1(f"{int(seed)}:{source_file}:{int(first_row)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


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


class UpsampleActor:
    """Ray Data actor: loads the model once, then upsamples whole batches (one flow call per batch)."""

    def __init__(self, model_ref: str, tracking_uri: str | None, seed: int, oracle: bool | None,
                 grid: CoarseGrid) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        members = load_superres(model_ref, tracking_uri)
        check_variant(members, grid, oracle)
        if self.device.type == "cuda":
            members = [m.to(self.device).float() for m in members]
            for m in members:
                m.dtype_name = "float32"
        self.members = [m.eval() for m in members]
        self.seed = int(seed)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        source_file = str(batch["source_file"][0])
        rows = np.asarray(batch["source_row"])
        with TORCH_RNG_LOCK:
            torch.manual_seed(batch_seed(self.seed, source_file, int(rows[0])))
            fine = upsample_rows(self.members, batch["showers"], batch["incident_energies"], rows, self.device)
        return {
            "showers": fine,
            "incident_energies": np.asarray(batch["incident_energies"], dtype=np.float32).reshape(-1),
            "source_file": batch["source_file"],
            "source_row": rows.astype(np.int64),
        }


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
    else `actors` or min(CPUs − 1, files) CPU actors. Ray must be initialised. Returns the shard paths in order.
    """
    from caloray.geometry import get_geometry
    from caloray.provenance import provenance

    if batch_size < 1:
        raise CalorayError(f"batch_size must be ≥ 1, got {batch_size}")
    paths = expand_paths(inputs)
    if not paths:
        raise CalorayError(f"no shower files found in {inputs!r}")
    grid = CoarseGrid.from_geometry(get_geometry(geometry), choice)
    members = load_superres(model_ref, tracking_uri)  # fail early on the driver, before any actor starts
    variant = "oracle" if check_variant(members, grid, oracle) else "strict"
    # Read layout fixed by the inputs and batch_size alone (≈ batch_size rows per read range), not by the
    # cluster's size: every batch below is one read block, so the batches, hence their seeds, are reproducible.
    n_rows = ShowerDatasource(paths, rows_per_block=batch_size).n_showers
    ds = read_showers(paths, rows_per_block=batch_size, provenance=True,
                      override_num_blocks=max(1, -(-n_rows // batch_size)))
    gpus = int(ray.cluster_resources().get("GPU", 0))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    # CPU actors leave one CPU to the read and write tasks (otherwise a 2-CPU cluster deadlocks).
    n_actors = actors or (gpus if gpus else max(1, min(cpus - 1, len(paths))))
    resources: dict[str, Any] = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    ds = ds.map_batches(
        UpsampleActor,
        fn_constructor_args=(str(model_ref), tracking_uri, seed, oracle, grid),
        # One batch per read block (≤ batch_size rows of one file): batches never span blocks, so every
        # batch, hence its seed (file, first row), is the same however the blocks arrive.
        batch_size=None,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        **resources,
    )
    attrs = provenance(None, model=str(model_ref), seed=int(seed), choice=str(choice), variant=variant,
                       geometry=geometry, batch_size=int(batch_size))
    return write_dataset(ds, out_dir, fmt="hdf5", geometry=geometry, attrs=attrs, prefix="superres")
