"""One MLflow run lifecycle for every workflow: open, log, nest, end.

`Run.start` gets or creates the experiment (a local store keeps its artifacts in the output folder), opens a run
through an explicit `MlflowClient` (no global active run, so runs in one process never mix), tags it with its
driver and first marks the runs of dead drivers KILLED (`tracking.drivers`). As a context manager a run ends
FINISHED, FAILED with a `caloray.error` tag, or KILLED on Ctrl-C. Runs started inside `with run.nest():` become
its children (`mlflow.parentRunId`): the pipeline's stage runs sit under its run without each workflow taking a
parent argument.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Any

from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from caloray.tracking.drivers import driver_tags, mark_killed_runs
from caloray.tracking.lineage import source_tags
from caloray.tracking.params import energy_step, flatten_params
from caloray.tracking.store import resolve_tracking_uri, start_system_metrics, stop_system_metrics

ERROR_TAG = "caloray.error"
_PARAM_BATCH = 100  # MLflow's limit per log_batch call
_METRIC_BATCH = 1000
_MAX_ERROR = 4000

#: The run whose `nest()` block we are in: runs started there without an explicit parent become its children.
_NESTING: ContextVar[Run | None] = ContextVar("caloray_parent_run", default=None)


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _finite(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return number == number and abs(number) != float("inf")


class Run:
    """One open MLflow run. Start it with `Run.start` (or `parent.child`), end it with `finish`/`fail` or by
    leaving its `with` block."""

    def __init__(self, client: MlflowClient, run_id: str, tracking_uri: str, experiment_id: str, *,
                 system_metrics: bool = False) -> None:
        self.client, self.run_id, self.tracking_uri, self.experiment_id = client, run_id, tracking_uri, experiment_id
        self.status: str | None = None  # set when the run has ended
        self._monitor = start_system_metrics(run_id, tracking_uri) if system_metrics else None

    @classmethod
    def start(cls, experiment: str, name: str, out_dir: str | Path, *, tracking_uri: str | None = None,
              params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None,
              parent: Run | str | None = None, system_metrics: bool = False) -> Run:
        """Open a RUNNING run `name` in `experiment` for the outputs in `out_dir`.

        tracking_uri: None → `MLFLOW_TRACKING_URI`, else the local store in `out_dir` (`resolve_tracking_uri`).
        params: nested mapping, logged flattened (`flatten_params`). parent: a run or run id of the same store;
        None → the run of the enclosing `nest()` block, if any. system_metrics: start MLflow's monitor when the
        user opted in (`MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`).
        """
        uri, artifact_location = resolve_tracking_uri(out_dir, tracking_uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(
            experiment, artifact_location=artifact_location)
        if parent is None:
            enclosing = _NESTING.get()
            parent = enclosing if enclosing is not None and enclosing.tracking_uri == uri else None
        all_tags = source_tags() | driver_tags(out_dir) | dict(tags or {})
        if parent is not None:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent if isinstance(parent, str) else parent.run_id
        run_id = client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id
        mark_killed_runs(client, experiment_id, by=run_id)
        run = cls(client, run_id, uri, experiment_id, system_metrics=system_metrics)
        run.log_params(params or {})
        return run

    def child(self, name: str, *, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, str] | None = None) -> Run:
        """A nested run in the same experiment (tag `mlflow.parentRunId` = this run), e.g. an ensemble member."""
        all_tags = source_tags() | driver_tags() | dict(tags or {}) | {MLFLOW_PARENT_RUN_ID: self.run_id}
        run_id = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags).info.run_id
        run = Run(self.client, run_id, self.tracking_uri, self.experiment_id)
        run.log_params(params or {})
        return run

    @contextmanager
    def nest(self) -> Iterator[Run]:
        """Runs started by `Run.start` in this block (same store, no explicit parent) become this run's children."""
        token = _NESTING.set(self)
        try:
            yield self
        finally:
            _NESTING.reset(token)

    # ----- logging ------------------------------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log a (nested) mapping as flat string params, in batches."""
        items = [Param(k, v) for k, v in flatten_params(_json_safe(dict(params))).items()]
        for start in range(0, len(items), _PARAM_BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + _PARAM_BATCH])

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None, *, per_energy: bool = False) -> dict:
        """Log the finite values of `metrics` (NaN, ±inf and None are skipped) at `step` (default 0); returns
        the logged {key: value}. per_energy: keys `PREFIX.<E>GeV.NAME` go in as `PREFIX.NAME` at step E in MeV
        (`energy_step`), so the UI draws them against energy."""
        finite = {k: float(v) for k, v in metrics.items() if _finite(v)}
        now = int(time.time() * 1000)
        items = []
        for key, value in finite.items():
            name, energy = energy_step(key) if per_energy else (key, 0)
            items.append(Metric(name, value, now, energy if per_energy else (step or 0)))
        for start in range(0, len(items), _METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=items[start:start + _METRIC_BATCH])
        return finite

    def log_history(self, rows: Iterable[Mapping[str, float]], keys: Iterable[str], step_key: str) -> None:
        """Per-step metrics from rows such as a training history: each of `keys` present in a row, at the row's
        `step_key` value (e.g. the epoch)."""
        keys, now = tuple(keys), int(time.time() * 1000)
        items = [Metric(key, float(row[key]), now, int(row[step_key])) for row in rows for key in keys
                 if key in row and _finite(row[key])]
        for start in range(0, len(items), _METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=items[start:start + _METRIC_BATCH])

    def log_artifacts(self, paths: Iterable[str | Path], folder: str | None = None) -> None:
        """Log files (into `folder`, default the top) and folders (as `folder/NAME`, default `NAME`); paths that
        do not exist are skipped (optional outputs)."""
        for path in map(Path, paths):
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), artifact_path=f"{folder}/{path.name}"
                                          if folder else path.name)
            elif path.is_file():
                self.client.log_artifact(self.run_id, str(path), artifact_path=folder)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    # ----- ending -------------------------------------------------------------------------------------------
    def finish(self, status: str = "FINISHED") -> str:
        """End the run with `status` (FINISHED, FAILED or KILLED); a second call does nothing. Returns the status."""
        if self.status is None:
            RunStatus.from_string(status)  # refuses an unknown status before anything is stopped
            stop_system_metrics(self._monitor)
            self.client.set_terminated(self.run_id, status)
            self.status = status
        return self.status

    def fail(self, error: BaseException) -> str:
        """End the run with the error as the `caloray.error` tag: KILLED for Ctrl-C, FAILED otherwise."""
        if self.status is None:
            self.client.set_tag(self.run_id, ERROR_TAG, f"{type(error).__name__}: {error}"[:_MAX_ERROR])
        return self.finish("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is None:
            self.finish()
        else:
            self.fail(error)
