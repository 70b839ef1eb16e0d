"""Every workflow in one place: name → module with one `Config` dataclass and `run(config) -> Result`.

The CLI subcommands (`caloray/cli.py`), the Ray Job entrypoint (`jobs/run.py WORKFLOW --config FILE`) and
the end-to-end pipeline's stages all build a workflow's `Config` here (YAML, then flags, then `--set KEY=VALUE`
overrides) and call its `run`, so a field added to a `Config` is reachable from every front door.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from caloray.config import from_dict, read_yaml
from caloray.errors import ConfigError


@dataclass(frozen=True)
class Workflow:
    """How a workflow is run; workflow NAME lives in the module `caloray.workflows.NAME` (dashes as underscores).
    `out_field`: the Config field naming its output folder (`--out` sets it); `default_config`: the YAML read when
    none is given (None → the Config's defaults)."""

    out_field: str = "out"
    default_config: Path | None = None


#: The workflows by command name (`caloray NAME`, `jobs/run.py NAME`).
WORKFLOWS: dict[str, Workflow] = {
    **dict.fromkeys(["simulate", "features", "generate", "validate", "score", "superres", "pipeline", "production",
                     "calibration-study", "superres-study", "amplification"], Workflow()),
    "train": Workflow(out_field="output_dir"),
    "calibrate": Workflow(out_field="out_dir"),
    "demo": Workflow(default_config=Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"),
}


@dataclass
class Result:
    """What a workflow run produced. `out`: its output folder; `metrics`: headline numbers (plain floats, the
    units in the key names); `paths`: output files by role (e.g. shards per dataset); `summary`: the text the
    CLI and the job print; `passed`: the verdict of a configured gate (False → exit status 1), None when none
    ran; `detail`: the underlying result object of the library call, for callers that need more."""

    out: Path
    metrics: dict[str, float] = field(default_factory=dict)
    paths: dict[str, list[Path]] = field(default_factory=dict)
    summary: str = ""
    passed: bool | None = None
    detail: Any = None

    @property
    def exit_status(self) -> int:
        return 1 if self.passed is False else 0


def workflow(name: str) -> ModuleType:
    """The module of workflow `name` (its `Config` and `run`)."""
    if name not in WORKFLOWS:
        raise ConfigError(f"unknown workflow {name!r}; choose from {', '.join(WORKFLOWS)}")
    return importlib.import_module(f"caloray.workflows.{name.replace('-', '_')}")


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` overrides (dotted keys reach nested configs) as a nested mapping; values are YAML scalars or
    lists (`n_showers=100`, `energies_mev=[1e4, 5e4]`, `tracking_uri=null`)."""
    tree: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: not a YAML value: {exc}") from None
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is set to a value and used as a section")
        node[leaf] = value
    return tree


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_config(name: str, path: str | Path | None = None, flags: Mapping[str, Any] | None = None,
                 sets: Sequence[str] = ()) -> Any:
    """Workflow `name`'s `Config`: the YAML at `path` (or the workflow's default file), then `flags` (field →
    value; None values are left out), then the `--set` overrides; unknown keys and wrong types are errors
    naming the file (or `--set`) and the key."""
    module = workflow(name)  # unknown names: a ConfigError listing the workflows
    source = Path(path) if path else WORKFLOWS[name].default_config
    data = read_yaml(source) if source else None
    if not isinstance(data, dict | None):
        raise ConfigError(f"{source}: expected a mapping of config fields, got {type(data).__name__}")
    data = _merge(data or {}, {k: v for k, v in (flags or {}).items() if v is not None})
    data = _merge(data, parse_sets(sets))
    config = from_dict(module.Config, data, where=str(source) if source else name)
    resolve = getattr(module, "resolve_paths", None)  # configs that name other files relative to themselves
    return resolve(config, source.parent) if resolve and source else config


def run_workflow(name: str, config: Any, *, check_values: bool = False, **options: Any) -> Result:
    """Workflow `name` on `config` as every front door runs it: its input checks (with `check_values`, also
    NaN/inf/negative energies) before Ray starts, then Ray (`RAY_ADDRESS`, else a local one), `run(config,
    **options)` and its summary on stdout."""
    from caloray.runtime import init_ray

    module = workflow(name)
    if hasattr(module, "check_inputs"):
        module.check_inputs(config, check_values=check_values)
    init_ray()
    result = module.run(config, **options)
    print(result.summary, flush=True)
    return result


def write_job_record(name: str, config: Any, result: Result) -> Path:
    """OUT/job/provenance.json: the config, versions, metrics, output paths and where the run ran (Ray job id and
    address, MLflow tracking URI, credentials redacted), next to what the workflow itself writes into OUT."""
    import os

    from caloray.provenance import write_provenance
    from caloray.runtime import ray_job_id
    from caloray.tracking.store import redact_uri

    job = {"ray_job_id": ray_job_id(),
           "ray_address": redact_uri(os.environ.get("RAY_ADDRESS")),
           "mlflow_tracking_uri": redact_uri(os.environ.get("MLFLOW_TRACKING_URI"))}
    paths = {role: [str(p) for p in files] for role, files in result.paths.items()}
    return write_provenance(result.out / "job" / "provenance.json", config, stage=name, job=job,
                            metrics=result.metrics, paths=paths, passed=result.passed)
