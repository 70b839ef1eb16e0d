"""Shared plumbing of the Ray Job entrypoints in `jobs/`: arguments, job identity, provenance.

The scripts run as `python jobs/NAME.py`, so this module is imported as a sibling (`from _entry import ...`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from caloray.provenance import write_provenance
from caloray.tracking.store import redact_uri


def job_parser(description: str, *, out_help: str) -> argparse.ArgumentParser:
    """`--config YAML` (required) and `--out DIR`; scripts add their own flags."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="YAML job config (see jobs/configs/)")
    parser.add_argument("--out", help=out_help)
    return parser


def job_info() -> dict[str, Any]:
    """Where this job ran: Ray job id and address, MLflow tracking URI (credentials redacted from both)."""
    import ray

    job_id = ray.get_runtime_context().get_job_id() if ray.is_initialized() else None
    return {
        "ray_job_id": job_id,
        "ray_address": redact_uri(os.environ.get("RAY_ADDRESS")),
        "mlflow_tracking_uri": redact_uri(os.environ.get("MLFLOW_TRACKING_URI")),
    }


def finish(out: Path, config: Any, *, stage: str, **extra: Any) -> Path:
    """Write `out/provenance.json` (config, versions, job identity, `extra`) and say where outputs are."""
    path = write_provenance(out / "provenance.json", config, stage=stage, job=job_info(), **extra)
    print(f"{stage}: outputs in {out}, provenance in {path}", flush=True)
    return path


def run_script(main: Callable[[], int]) -> int:
    """Run a job's `main` as a script: caloray's input errors, also those raised in Ray tasks and actors, become
    one line on stderr and exit code 2."""
    from caloray.errors import one_line, user_error

    try:
        return main()
    except Exception as exc:
        error = user_error(exc)
        if error is None:
            raise
        print(f"{Path(sys.argv[0]).name}: error: {one_line(error)}", file=sys.stderr)
        return 2
