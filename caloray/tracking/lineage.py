"""Where a run came from: source/git-revision tags and the shower files it read (MLflow dataset inputs).

Every caloray run carries the standard MLflow source tags (`mlflow.source.name`, `mlflow.source.git.commit`)
and logs the shower files it used with `MlflowClient.log_inputs`, so the UI's "Datasets used" column shows
the path, row count, geometry and a content digest of the training, reference and generated samples.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE

from caloray.provenance import git_revision

#: Dataset contexts (MLflow's `mlflow.data.context` tag) used by caloray runs.
CONTEXTS = ("training", "reference", "generated", "evaluation")


def source_tags(entry_point: str | None = None) -> dict[str, str]:
    """MLflow's source tags: the program (or `entry_point`) and the git revision.

    The revision comes from `CALORAY_GIT_REVISION` when set (Ray jobs: `.git` is not uploaded, so the submit
    manifests pass the revision taken at submit time), else from the checkout (see `provenance.git_revision`).
    """
    name = entry_point or (Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "caloray")
    return {MLFLOW_SOURCE_NAME: name, MLFLOW_SOURCE_TYPE: "JOB", MLFLOW_GIT_COMMIT: git_revision()}


class ShowerDataset(MetaDataset):
    """Metadata of a set of shower files (no data is uploaded): source folder, digest and a profile with the
    files, row count, geometry and the sha256 of the files' bytes (MetaDataset has no profile of its own)."""

    def __init__(self, source_uri: str, name: str, sha256: str, profile: dict[str, Any]) -> None:
        self._profile = profile
        super().__init__(resolve_dataset_source(source_uri), name=name, digest=sha256[:32])

    @property
    def profile(self) -> dict[str, Any]:
        return self._profile

    def to_dict(self) -> dict[str, str]:
        """MetaDataset's fields plus the profile (JSON), which MLflow stores with the dataset."""
        return super().to_dict() | {"profile": json.dumps(self._profile)}


def files_sha256(digests: Sequence[str]) -> str:
    """sha256 over the files' individual hex sha256 digests in order (identical bytes → identical digest)."""
    combined = hashlib.sha256()
    for digest in digests:
        combined.update(digest.encode())
    return combined.hexdigest()


def shower_dataset(paths: Sequence[str | Path], geometry: str | None, name: str,
                   sha256s: Sequence[str] | None = None, layout: Any = None) -> ShowerDataset:
    """The `ShowerDataset` of shower files (HDF5 or ROOT, checked by `inspect_shower_file`; `layout`: the
    `caloray.io.RootLayout` of ROOT inputs); rows summed over files.
    `sha256s`: the files' digests when already known (e.g. from a generation manifest), else computed."""
    from caloray.io import expand_paths, inspect_shower_file
    from caloray.provenance import sha256_file

    files = expand_paths([str(p) for p in paths])
    rows = sum(inspect_shower_file(path, layout=layout).n_showers for path in files)
    sha256 = files_sha256(list(sha256s) if sha256s is not None else [sha256_file(path) for path in files])
    folders = {path.resolve().parent for path in files}
    source = str(folders.pop()) if len(folders) == 1 else str(files[0].resolve())
    profile = {"rows": rows, "files": len(files), "geometry": geometry or "unknown", "sha256": sha256}
    return ShowerDataset(source, name, sha256, profile)


def log_shower_inputs(client: MlflowClient, run_id: str, paths: Sequence[str | Path], *, context: str,
                      geometry: str | None, name: str | None = None,
                      sha256s: Sequence[str] | None = None, layout: Any = None) -> ShowerDataset | None:
    """Log shower files as one dataset input of `run_id` with `context` (e.g. "training"); None when no paths."""
    if context not in CONTEXTS:
        raise ValueError(f"dataset context must be one of {CONTEXTS}, got {context!r}")
    if not paths:
        return None
    dataset = shower_dataset(paths, geometry, name or f"{context}-showers", sha256s, layout)
    entity = DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])
    client.log_inputs(run_id, datasets=[entity])
    return dataset
