"""Production generation: `caloray generate` / `generate(config)`.

Samples millions of showers from a trained surrogate (a registered `NAME[:VERSION]` or a checkpoint) into
CaloChallenge HDF5 shards on the shared shard runner (`caloray.pipelines.shards`: a pool of actors, each
loading the model once, one GPU each when available), deterministic per (seed, shard index) and resumable:
verified shards are kept, missing, corrupt or temporary ones are regenerated, and a folder of another
generation is refused. `manifest.json` lists every
shard with its row count and sha256. An automatic validation against the model's training data (or given
reference files) decides the MLflow run's status: FINISHED when it passes, FAILED when it fails.

    from caloray.generate import GenerationConfig, generate
    result = generate(GenerationConfig(model="vae-ecal-hcal:3", n_showers=1_000_000, out="outputs/gen"))

Names are imported on first use, so generation actors (which import `caloray.generate.pipeline`) do not
load MLflow or the validation stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caloray.generate.config import DEFAULT_SHARD_SIZE, GenerationConfig, load_generation_config
    from caloray.generate.energies import EnergySpec, parse_energy_spec
    from caloray.generate.models import GenerationError, ModelSource, ShowerSampler, generate_showers
    from caloray.generate.plan import Shard, plan_shards, shard_energies, shard_streams
    from caloray.generate.run import GenerationResult, generate
    from caloray.generate.shards import ShardRecord, content_sha256
    from caloray.generate.validation import ValidationOutcome

_EXPORTS = {
    "DEFAULT_SHARD_SIZE": "config", "GenerationConfig": "config", "load_generation_config": "config",
    "EnergySpec": "energies", "parse_energy_spec": "energies",
    "GenerationError": "models", "ModelSource": "models", "ShowerSampler": "models", "generate_showers": "models",
    "Shard": "plan", "plan_shards": "plan", "shard_energies": "plan", "shard_streams": "plan",
    "GenerationResult": "run", "generate": "run",
    "ShardRecord": "shards", "content_sha256": "shards",
    "ValidationOutcome": "validation",
}

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "EnergySpec",
    "GenerationConfig",
    "GenerationError",
    "GenerationResult",
    "ModelSource",
    "Shard",
    "ShardRecord",
    "ShowerSampler",
    "ValidationOutcome",
    "content_sha256",
    "generate",
    "generate_showers",
    "load_generation_config",
    "parse_energy_spec",
    "plan_shards",
    "shard_energies",
    "shard_streams",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'caloray.generate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"caloray.generate.{_EXPORTS[name]}"), name)
