"""Workflow `validate`: calibrated two-sample tests of candidate vs reference showers
(`caloray.pipelines.validate.validate_files`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from caloray.errors import ConfigError
from caloray.io import expand_paths
from caloray.pipelines.validate import ValidationConfig as Config
from caloray.pipelines.validate import failed_gates, validate_files
from caloray.workflows import Result

__all__ = ["Config", "run"]


def check_inputs(config: Config, *, check_values: bool = False) -> None:
    """Both samples' files, keys, shapes and the geometry's voxel count, before Ray starts."""
    from caloray.geometry import get_geometry
    from caloray.io import RootLayout
    from caloray.io.checks import check_shower_inputs

    if not config.geometry:
        raise ConfigError("validate: geometry is required (both samples' geometry)")
    geometry, layout = get_geometry(config.geometry), RootLayout.parse(config.root_layout)
    for inputs in (config.reference, config.candidate):
        check_shower_inputs(inputs, geometry=geometry, layout=layout, check_values=check_values)


def run(config: Config) -> Result:
    """Expand `reference` and `candidate` (files, folders, globs), run the tests into `config.out`; `passed` is
    False when a configured classifier gate (`max_auc`) fails; `detail`: the results table."""
    if not config.geometry:
        raise ConfigError("validate: geometry is required (both samples' geometry)")
    resolved = {}
    for name in ("reference", "candidate"):
        paths = [str(p) for p in expand_paths(getattr(config, name))]
        if not paths:
            raise ConfigError(f"validate: no shower files found in {name} {getattr(config, name)}")
        resolved[name] = paths
    table = validate_files(dataclasses.replace(config, **resolved))
    column = table["p_value"].to_pylist() if "p_value" in table.column_names else []  # absent: classifier only
    p_values = [p for p in column if p is not None]
    failed = failed_gates(table)
    metrics = {"n_tests": float(table.num_rows), "min_p_value": float(min(p_values)) if p_values else float("nan")}
    out = Path(config.out)
    return Result(out=out, metrics=metrics, paths={"summary": [out / "summary.txt"]}, passed=False if failed else None,
                  summary=f"{table.num_rows} tests, results in {out}", detail=table)
