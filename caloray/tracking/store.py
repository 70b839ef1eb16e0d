"""Where runs are tracked: a local SQLite store in the output folder, unless `MLFLOW_TRACKING_URI` is set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DB_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"


def local_tracking_uri(output_dir: str | Path) -> str:
    """`sqlite:///<output_dir>/mlflow.db`: the default store (it supports the model registry)."""
    return f"sqlite:///{Path(output_dir).resolve() / DB_FILE}"


def local_artifact_location(output_dir: str | Path) -> str:
    """`file://` URI of `<output_dir>/mlartifacts`, where the local store keeps artifacts."""
    return (Path(output_dir).resolve() / ARTIFACT_DIR).as_uri()


def resolve_tracking_uri(output_dir: str | Path, configured: str | None = None) -> tuple[str, str | None]:
    """(tracking URI, artifact location for new experiments or None for the server's default).

    Precedence: `configured` (tracking.tracking_uri), then `MLFLOW_TRACKING_URI`, then the local store.
    """
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, None
    return local_tracking_uri(output_dir), local_artifact_location(output_dir)


def ui_command(tracking_uri: str, output_dir: str | Path | None = None) -> str:
    """The shell command that opens the MLflow UI on `tracking_uri` (with the local artifact folder); for a
    tracking server, its address (it serves the UI itself)."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {redact_uri(tracking_uri)} in a browser (MLflow tracking server)"
    command = f"mlflow ui --backend-store-uri {tracking_uri}"
    if output_dir is not None and tracking_uri.startswith("sqlite:"):
        command += f" --default-artifact-root {local_artifact_location(output_dir)}"
    return command


def redact_uri(uri: str | None) -> str | None:
    """`uri` without a `user:password@` part, so manifests and params never store credentials."""
    from urllib.parse import urlsplit, urlunsplit

    if not uri:
        return uri
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    # Keep the host part verbatim (rebuilding it from .hostname drops an IPv6 address's brackets).
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@contextmanager
def using_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (used by `Model.log` and by the registry to find logged models) at `uri` for the
    block, then restore exactly the previous state, including "not set" (MLflow mirrors the global URI into
    `MLFLOW_TRACKING_URI`, which subprocesses would otherwise inherit).

    caloray otherwise talks to MLflow through explicit clients; logging a model has no client-level API."""
    import mlflow
    from mlflow.tracking import is_tracking_uri_set

    previous = mlflow.get_tracking_uri() if is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def system_metrics_enabled() -> bool:
    """Whether the user opted in to MLflow system metrics with MLflow's own switch,
    `MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true`. Off by default: the sampling thread costs CPU, which matters on
    the small machines the demo targets."""
    from mlflow.environment_variables import MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING

    return bool(MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.get())


def start_system_metrics(run_id: str, tracking_uri: str) -> Any:
    """Start MLflow's system-metrics monitor (CPU, memory, disk, network, GPU when present; sampled every
    `MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` s, 10 by default) for `run_id` when the user opted in; the monitor,
    or None. Stop it with `stop_system_metrics` before the run is terminated."""
    if not system_metrics_enabled():
        return None
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, tracking_uri=tracking_uri)
    monitor.start()
    return monitor


def stop_system_metrics(monitor: Any) -> None:
    """Stop a monitor from `start_system_metrics` (None: nothing to stop); it logs its last samples first."""
    if monitor is not None:
        monitor.finish()
