"""The MLflow model registry for ensembles: register a version, load one back (weights_only).

A registered version's source is the `ensemble/` artifact folder of the ensemble's parent run:
`ensemble.pt` (a `caloray.models` checkpoint of kind "ensemble"), `manifest.json`, the training config
and model/geometry descriptions. Nothing is pickled: loading needs only `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow.artifacts
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from caloray.errors import CalorayError
from caloray.models import Ensemble, Surrogate, load_model
from caloray.models.load import is_checkpoint

ENSEMBLE_ARTIFACT = "ensemble"
ENSEMBLE_FILE = "ensemble.pt"
MANIFEST_FILE = "manifest.json"


class RegistryError(CalorayError, LookupError):
    """A registered model name or version does not exist (the message lists what does)."""


#: The alias every training sets on the version it registers; a passing generation validation sets
#: `GenerationConfig.validated_alias` ("validated" by default).
CANDIDATE_ALIAS = "candidate"


def register_ensemble(
    client: MlflowClient,
    name: str,
    *,
    source: str,
    run_id: str,
    description: str = "",
    model_id: str | None = None,
    tags: dict[str, str] | None = None,
    aliases: tuple[str, ...] = (),
) -> int:
    """Create `name` if needed and add a version pointing at `source` (a logged model's ``models:/<id>`` with
    its `model_id`, or an artifact folder), with version `tags` and `aliases`; returns the version number."""
    from caloray.tracking.store import using_tracking_uri

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, tags={"caloray.format": "caloray-ensemble"})
    # The registry looks a `models:/<id>` source up through MLflow's global tracking URI, not the client's.
    with using_tracking_uri(client.tracking_uri):
        version = client.create_model_version(name, source=source, run_id=run_id, description=description,
                                              tags=tags, model_id=model_id)
    for alias in aliases:
        client.set_registered_model_alias(name, alias, version.version)
    return int(version.version)


def mark_validated(name: str, version: int, alias: str, *, run_id: str, tracking_uri: str | None = None) -> None:
    """Point `alias` (e.g. "validated") at `name` version `version` and record the run whose validation passed
    (version tag `caloray.validation` and a line in the description)."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.set_registered_model_alias(name, alias, str(version))
    client.set_model_version_tag(name, str(version), "caloray.validation", f"passed (run {run_id})")
    current = client.get_model_version(name, str(version)).description or ""
    note = f"Validation: passed in generation run {run_id} (alias @{alias})."
    client.update_model_version(name, str(version), description=f"{current}\n{note}".strip())


def split_model_ref(text: str) -> tuple[str, str | None]:
    """("NAME", version) of "NAME", "NAME:VERSION" or "NAME@ALIAS" (the alias is returned as "@ALIAS")."""
    if "@" in text:
        name, _, alias = text.partition("@")
        return name, f"@{alias}"
    name, _, version = text.partition(":")
    return name, version or None


def registered_names(client: MlflowClient) -> list[str]:
    """Every registered model name in the registry, sorted."""
    return sorted(model.name for model in client.search_registered_models())


def resolve_version(client: MlflowClient, name: str, version: int | str | None = None) -> int:
    """The version number meant by `version` (None or "latest" → the highest, "@ALIAS" → the aliased one)."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        available = ", ".join(registered_names(client)) or "none"
        raise RegistryError(f"no registered model named {name!r}; registered models: {available}") from None
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    if not versions:
        raise RegistryError(f"registered model {name!r} has no versions")
    if version is None or version == "latest":
        return versions[-1]
    if isinstance(version, str) and version.startswith("@"):
        try:
            return int(client.get_model_version_by_alias(name, version[1:]).version)
        except MlflowException:
            aliases = ", ".join(f"@{a}" for a in sorted(client.get_registered_model(name).aliases)) or "none"
            raise RegistryError(f"registered model {name!r} has no alias {version!r}; aliases: {aliases}") from None
    try:
        number = int(version)
    except ValueError:
        raise RegistryError(f"version must be an integer or 'latest', got {version!r}") from None
    if number not in versions:
        raise RegistryError(f"registered model {name!r} has no version {number}; versions: {versions}")
    return number


def download_registered(
    name: str,
    version: int | str | None = None,
    *,
    tracking_uri: str | None = None,
    dst: str | Path | None = None,
) -> Path:
    """Download a registered ensemble version; returns the local folder holding ensemble.pt and its manifest.

    Without `dst` the folder is a new temporary one that the caller owns (see `registered_folder`)."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    number = resolve_version(client, name, version)
    source = client.get_model_version_download_uri(name, str(number))
    dst = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="caloray-registry-"))
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst)))
    # A logged pyfunc model keeps its files under artifacts/ next to MLmodel (older versions: the folder itself).
    return folder / "artifacts" if (folder / "MLmodel").is_file() else folder


@contextmanager
def registered_folder(name: str, version: int | str | None = None, *,
                      tracking_uri: str | None = None) -> Iterator[Path]:
    """The artifact folder of a registered ensemble version, in a temporary folder removed on exit."""
    with tempfile.TemporaryDirectory(prefix="caloray-registry-") as tmp:
        yield download_registered(name, version, tracking_uri=tracking_uri, dst=tmp)


def load_registered(
    name: str,
    version: int | str | None = None,
    *,
    tracking_uri: str | None = None,
    member_kind: str | None = None,
) -> Ensemble:
    """The registered ensemble `name` at `version` (int, "latest" or None = latest), loaded weights_only.

    `tracking_uri` None uses `MLFLOW_TRACKING_URI` / MLflow's default; for a local training run pass
    `caloray.tracking.local_tracking_uri(output_dir)`. `member_kind` guards against another model type.
    """
    with registered_folder(name, version, tracking_uri=tracking_uri) as folder:
        ensemble = load_model(folder / ENSEMBLE_FILE, expected_kind="ensemble")
    if member_kind is not None and ensemble.member_kind != member_kind:
        raise RegistryError(
            f"registered model {name!r} holds {ensemble.member_kind!r} members, expected {member_kind!r}"
        )
    return ensemble


def load(name: str | Path, version: int | str | None = None, *, tracking_uri: str | None = None) -> Surrogate:
    """`name` is a checkpoint path (loaded weights_only) or a registry `NAME`, `NAME:VERSION` or `NAME@ALIAS`.

    Registered ensembles come from `tracking_uri` (default: `MLFLOW_TRACKING_URI`); `version` None or
    "latest" picks the newest version, "@ALIAS" the aliased one (e.g. "@validated").
    """
    if is_checkpoint(name):
        return load_model(Path(name).expanduser())
    text = str(name)
    if version is None and not text.startswith(("/", ".")):
        text, version = split_model_ref(text)
    return load_registered(text, version, tracking_uri=tracking_uri)


def registered_energy_range(
    name: str, version: int | str | None = None, *, tracking_uri: str | None = None
) -> tuple[float, float] | None:
    """(min, max) incident energy in MeV the registered ensemble was trained on, if its run recorded it."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    number = resolve_version(client, name, version)
    run_id = client.get_model_version(name, str(number)).run_id
    params = client.get_run(run_id).data.params if run_id else {}
    try:
        return float(params["data.incident_energy_min_mev"]), float(params["data.incident_energy_max_mev"])
    except (KeyError, ValueError):
        return None
