"""Ray Job entrypoint: calibrated two-sample tests of candidate (generated) showers against reference showers.

    python jobs/validate.py --config jobs/configs/validate-demo.yaml --out /mnt/caloray/validation

Feature maps × statistics with bootstrap or permutation nulls built on Ray (`caloray.pipelines.validate`):
p-values, sigma, power, replicate arrays (Parquet), null-vs-alternative plots, logged to MLflow
(`MLFLOW_TRACKING_URI`, else a local store in the output folder). The config holds `ValidationConfig` fields;
`reference` and `candidate` take files, folders or globs.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from _entry import finish, job_parser, run_script

from caloray.config import load_yaml
from caloray.errors import ConfigError
from caloray.io import expand_paths
from caloray.pipelines.validate import ValidationConfig, validate_files
from caloray.runtime import init_ray


def resolve_inputs(config: ValidationConfig) -> ValidationConfig:
    """The config with `reference` and `candidate` expanded to shower files (folders and globs allowed)."""
    resolved = {}
    for name in ("reference", "candidate"):
        paths = [str(p) for p in expand_paths(getattr(config, name))]
        if not paths:
            raise ConfigError(f"validate: no shower files found in {name} {getattr(config, name)}")
        resolved[name] = paths
    return dataclasses.replace(config, **resolved)


def run(config: ValidationConfig) -> dict[str, float]:
    """Run the validation; returns {"min_p_value", "n_tests"} for the job record. Ray must be connected."""
    table = validate_files(resolve_inputs(config))
    p_values = [p for p in table["p_value"].to_pylist() if p is not None]
    return {"n_tests": float(table.num_rows), "min_p_value": float(min(p_values)) if p_values else float("nan")}


def build_parser() -> argparse.ArgumentParser:
    return job_parser(__doc__.splitlines()[0], out_help="output folder (overrides the config's `out`)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_yaml(ValidationConfig, args.config)
    if args.out:
        config.out = args.out
    init_ray()
    summary = run(config)
    finish(Path(config.out) / "job", config, stage="validate", config_file=str(args.config), summary=summary)
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
